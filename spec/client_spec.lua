-- cozmox.session.get and the client, against the local mock API.
local cozmox = require("cozmox")
local mock = require("support.mock")
local util = require("support.util")

local ID = "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f"

local client = mock.client

-- The fixture decoded, with the id the mock put in.
local function expected_session(id)
    local s = cozmox.json.decode(util.fixture("session.json"))
    s.id = id
    return s
end

-- Run a Lua snippet in a fresh interpreter with the in-tree modules.
local run_lua = util.run_lua

describe("session.get", function()
    it("returns the session as native Lua tables", function()
        local c = client()
        local s, err = c.session.get(ID)
        assert.is_nil(err)
        assert.equal(ID, s.id)
        assert.equal("active", s.status)
        assert.equal("claude-3-opus-20240229", s.assistant.model.model)
        assert.equal(cozmox.array_mt, getmetatable(s.messages))
        -- the session carries the helpers' metatable (cozmox.session); the
        -- data itself is the fixture, lossless
        local ok, where = util.same(setmetatable(expected_session(ID), getmetatable(s)), s)
        assert(ok, where)
        if math.type then assert.equal("integer", math.type(s.expirationSeconds)) end
    end)

    it("sends GET with Authorization, Accept and User-Agent", function()
        local c = client()
        assert.is_table((c.session.get("demo")))
        local req = mock.last_request()
        assert.equal("GET", req.method)
        assert.equal("/session/demo", req.request_uri)
        assert.equal("Bearer " .. mock.token, req.headers.authorization)
        assert.equal("application/json", req.headers.accept)
        local lua_version = (type(jit) == "table" and jit.version) or _VERSION
        local curl_version = require("cozmox.curl").version
        assert.equal("cozmox-lua/" .. cozmox.VERSION .. " libcurl/" .. curl_version .. " " .. lua_version,
            req.headers["user-agent"])
        assert.matches("^cozmox%-lua/%d+%.%d+%.%d+ libcurl/%d+%.%d+%.%d+ ", req.headers["user-agent"])
        assert.is_nil(req.body)
    end)

    it("sends the id as exactly one percent-encoded path segment", function()
        local c = client()
        local s = assert(c.session.get("a b/c"))
        assert.equal("a b/c", s.id)
        assert.equal("/session/a%20b%2Fc", mock.last_request().request_uri)

        local up = assert(c.session.get(".."))
        assert.equal("..", up.id)
        assert.equal("/session/%2E%2E", mock.last_request().request_uri)

        local odd = assert(c.session.get("ünï/cødé?#&"))
        assert.equal("ünï/cødé?#&", odd.id)
        assert.equal("/session/%C3%BCn%C3%AF%2Fc%C3%B8d%C3%A9%3F%23%26", mock.last_request().request_uri)

        local _, err = c.session.get("../x")
        assert.equal(404, err.status)
        assert.equal("/session/..%2Fx", mock.last_request().request_uri)
        assert.equal("-._~AZaz09", cozmox.escape_segment("-._~AZaz09"))
        assert.equal("%2E", cozmox.escape_segment("."))
    end)

    it("reuses one connection across calls (keep-alive)", function()
        local c = client()
        assert(c.session.get(ID))
        local first = mock.last_request()
        assert(c.session.get("demo"))
        local second = mock.last_request()
        assert.equal(first.connection, second.connection)
        assert.equal(first.connection_requests + 1, second.connection_requests)
    end)

    it("accepts gzip and decodes it", function()
        local c = client()
        local v = assert(c:request("GET", "/fault/gzip"))
        assert.equal("active", v.status)
        assert.matches("gzip", mock.last_request().headers["accept-encoding"])
    end)
end)

describe("errors", function()
    it("404: kind http, status, decoded body, one readable line", function()
        local c = client()
        local s, err = c.session.get("abc")
        assert.is_nil(s)
        assert.equal("http", err.kind)
        assert.equal(404, err.status)
        assert.equal("Session not found", err.message)
        assert.same({ message = "Session not found", error = "Not Found", statusCode = 404 }, err.body)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/abc)", tostring(err))
        assert.is_true(cozmox.is_error(err))
    end)

    it("401 for a wrong token, and the token appears nowhere", function()
        local secret = "sk-very-secret-token-1234567890"
        local c = client({ token = secret })
        local s, err = c.session.get(ID)
        assert.is_nil(s)
        assert.equal(401, err.status)
        assert.equal("http", err.kind)
        assert.matches("^cozmox: HTTP 401 Unauthorized: Invalid Key", tostring(err))
        assert.is_nil(tostring(err):find(secret, 1, true))
        assert.is_nil(tostring(c):find(secret, 1, true))
        for k, v in pairs(c) do
            assert.is_nil(tostring(k):find(secret, 1, true))
            assert.is_nil(tostring(v):find(secret, 1, true))
        end
        assert.equal("cozmox.client(" .. mock.base_url .. ")", tostring(c))
    end)

    it("shows every message of a validation error", function()
        local c = client()
        local _, err = c.session.get("invalid-input")
        assert.equal(400, err.status)
        assert.equal("cozmox: HTTP 400 Bad Request: name must be shorter than or equal to 40 characters; "
            .. "status must be one of the following values: active, completed (GET /session/invalid-input)",
            tostring(err))
        assert.equal(2, #err.body.message)
    end)

    it("an HTML error page: kind http with a printable snippet", function()
        local c = client({ max_retries = 0 })
        local v, err = c:request("GET", "/fault/html502")
        assert.is_nil(v)
        assert.equal("http", err.kind)
        assert.equal(502, err.status)
        assert.is_nil(err.body)
        assert.is_string(err.snippet)
        assert.is_nil(err.snippet:find("[%c]"))
        assert.matches("^cozmox: HTTP 502 Bad Gateway: ", tostring(err))
        assert.is_true(#tostring(err) < 320)
    end)

    it("malformed JSON on a 2xx: kind decode with the byte offset, no partial data", function()
        local c = client()
        local v, err = c:request("GET", "/__file/JSONTestSuite/test_parsing/n_object_trailing_comma.json")
        assert.is_nil(v)
        assert.equal("decode", err.kind)
        assert.equal(200, err.status)
        assert.matches("at byte offset %d+", err.message)
        assert.matches("^cozmox: invalid JSON response: ", tostring(err))
    end)

    it("a body over max_response_bytes: kind too_large", function()
        local c = client({ max_response_bytes = 1000 })
        local s, err = c.session.get(ID)
        assert.is_nil(s)
        assert.equal("too_large", err.kind)
        assert.matches("max_response_bytes", err.message)
        local ok = client({ max_response_bytes = #util.fixture("session.json") + 64 })
        assert.is_table((ok.session.get(ID)))
    end)

    it("nesting over max_depth: kind decode", function()
        local c = client({ max_depth = 3 })
        local s, err = c.session.get(ID)
        assert.is_nil(s)
        assert.equal("decode", err.kind)
        assert.matches("max_depth %(3%)", err.message)
    end)

    it("connection refused: kind network with curl_code", function()
        local port = util.free_port()
        local c = client({ base_url = "http://127.0.0.1:" .. port, max_retries = 0 })
        local s, err = c.session.get(ID)
        assert.is_nil(s)
        assert.equal("network", err.kind)
        assert.equal(7, err.curl_code)
        assert.matches("^cozmox: network error: .*%(GET /session/" .. ID:gsub("%-", "%%-") .. "%)$", tostring(err))
    end)

    it("a stalled server: kind timeout within the limit", function()
        local c = client({ timeout = 0.5 })
        local t0 = require("socket").gettime()
        local v, err = c:request("GET", "/fault/stall", { query = { s = 5 } })
        local dt = require("socket").gettime() - t0
        assert.is_nil(v)
        assert.equal("timeout", err.kind)
        assert.equal(28, err.curl_code)
        assert.is_true(dt < 2, "took " .. dt .. " s")
    end)

    it("a connection reset mid-body: kind network, no partial data", function()
        local c = client()
        local v, err = c:request("GET", "/fault/reset")
        assert.is_nil(v)
        assert.equal("network", err.kind)
    end)

    it("a body shorter than its Content-Length: kind network", function()
        local c = client()
        local v, err = c:request("GET", "/fault/short-body")
        assert.is_nil(v)
        assert.equal("network", err.kind)
        assert.equal(18, err.curl_code)
    end)

    it("an unknown CA over HTTPS: kind tls; with ca_file it works", function()
        local c = client({ base_url = mock.https_url })
        local s, err = c.session.get(ID)
        assert.is_nil(s)
        assert.equal("tls", err.kind)
        local good = client({ base_url = mock.https_url, ca_file = mock.ca_file })
        local s2, err2 = good.session.get(ID)
        assert.is_nil(err2)
        assert.equal(ID, s2.id)
    end)
end)

describe("arguments", function()
    it("raises bad argument for a missing or empty id", function()
        local c = client()
        assert.has_error(function() c.session.get() end,
            "bad argument #1 to 'get' (non-empty string expected, got nil)")
        assert.has_error(function() c.session.get("") end,
            "bad argument #1 to 'get' (non-empty string expected, got empty string)")
        assert.has_error(function() c.session.get(42) end,
            "bad argument #1 to 'get' (non-empty string expected, got number)")
    end)

    it("validates options at construction, naming the option", function()
        local function err_of(opts)
            local ok, e = pcall(cozmox.new, opts)
            assert.is_false(ok)
            return e
        end
        assert.matches("bad argument #1 to 'new' %(option 'timeout' must be a number, got string%)",
            err_of({ timeout = "10" }))
        assert.matches("option 'timeout' must be a number of seconds between 0.001 and 604800",
            err_of({ timeout = -1 }))
        assert.matches("option 'connect_timeout' must be a number of seconds between", err_of({ connect_timeout = 0 }))
        assert.matches("option 'max_response_bytes' must be an integer between 1 and 2^53",
            err_of({ max_response_bytes = 1.5 }), 1, true)
        assert.matches("option 'max_depth' must be an integer between 1 and 1000000", err_of({ max_depth = 0 }))
        assert.matches("option 'base_url' must be an http:// or https:// URL", err_of({ base_url = "ftp://x" }))
        assert.matches("option 'base_url' must be an http:// or https:// URL",
            err_of({ base_url = "file:///etc/passwd" }))
        assert.matches("unknown option 'tiemout'", err_of({ tiemout = 1 }))
        assert.matches("table expected, got string", err_of("x"))
        local e = err_of({ token = "abc\r\nX-Evil: 1" })
        assert.matches("option 'token' must be a non-empty string without control characters", e, 1, true)
        assert.is_nil(e:find("Evil", 1, true))
        assert.matches("option 'user_agent' must be a non-empty string without control characters",
            err_of({ user_agent = "a\nb" }), 1, true)
    end)

    it("strips a trailing slash from base_url and prefixes user_agent", function()
        local c = client({ base_url = mock.base_url .. "/", user_agent = "my-app/2.0" })
        assert.equal(mock.base_url, c.base_url)
        assert(c.session.get("demo"))
        assert.matches("^my%-app/2%.0 cozmox%-lua/", mock.last_request().headers["user-agent"])
    end)
end)

describe("resources", function()
    it("close() releases the handle; using a closed client raises", function()
        local c = client()
        assert(c.session.get("demo"))
        c:close()
        c:close() -- twice is harmless
        assert.matches("closed", tostring(c))
        assert.has_error(function() c.session.get("demo") end, "cozmox: the client is closed")
    end)

    it("garbage-collects clients and their handles", function()
        for _ = 1, 200 do
            local c = client()
            c.session.get("demo")
        end
        collectgarbage()
        collectgarbage()
        assert.is_table((client().session.get("demo")))
    end)

    if _VERSION == "Lua 5.4" then
        it("supports to-be-closed variables on Lua 5.4", function()
            local f = assert(load([[
                local cozmox, opts = ...
                local kept
                do
                    local c <close> = cozmox.new(opts)
                    kept = c
                    assert(c.session.get("demo"))
                end
                return kept
            ]]))
            local kept = f(cozmox, { token = mock.token, base_url = mock.base_url })
            assert.matches("closed", tostring(kept))
        end)
    end
end)

describe("the default client", function()
    it("reads COZMOX_TOKEN and COZMOX_BASE_URL on first use", function()
        local s, err = cozmox.session.get(ID)
        assert.is_nil(err)
        assert.equal(ID, s.id)
        assert.equal(cozmox.default(), cozmox.default())
        assert.equal(mock.base_url, cozmox.default().base_url)
    end)

    it("loads without a token and then fails with kind config", function()
        local out = run_lua([[
            local cozmox = require("cozmox")
            print("loaded")
            local s, err = cozmox.session.get("x")
            print(s, err.kind, tostring(err))
            local c = cozmox.new({ base_url = "http://127.0.0.1:9" })
            local s2, err2 = c.session.get("x")
            print(err2.kind)
        ]], "env -u COZMOX_TOKEN")
        assert.matches("loaded\n", out, 1, true)
        assert.matches("nil\tconfig\tcozmox: configuration error: no API token: set the COZMOX_TOKEN "
            .. "environment variable or pass one with cozmox.new({ token = ... }) (GET /session/x)\n", out, 1, true)
        assert.matches("\nconfig\n", out, 1, true)
    end)

    it("reports a bad COZMOX_BASE_URL as kind config", function()
        local out = run_lua([[
            local cozmox = require("cozmox")
            local s, err = cozmox.session.get("x")
            print(err.kind, err.message)
        ]], "COZMOX_BASE_URL=ftp://example")
        assert.matches("config\tCOZMOX_BASE_URL must be an http:// or https:// URL", out, 1, true)
    end)
end)

describe("client:request", function()
    it("sends query strings percent-encoded and bodies as JSON", function()
        local c = client()
        local v = c:request("POST", "/fault/status", { query = { code = 201, note = "a b&c" },
            body = { name = "x", n = 1 }, headers = { ["X-Trace"] = "t1" } })
        assert.is_truthy(v)
        local req = mock.last_request()
        assert.equal("POST", req.method)
        assert.equal("/fault/status?code=201&note=a%20b%26c", req.request_uri)
        assert.equal("application/json", req.headers["content-type"])
        assert.equal("t1", req.headers["x-trace"])
        assert.same({ name = "x", n = 1 }, cozmox.json.decode(req.body))
    end)

    it("refuses header values with CR/LF and reserved headers", function()
        local c = client()
        assert.has_error(function() c:request("GET", "/x", { headers = { ["X-A"] = "1\r\nX-B: 2" } }) end)
        assert.has_error(function() c:request("GET", "/x", { headers = { Authorization = "Bearer x" } }) end)
        assert.has_error(function() c:request("get", "/x") end)
        assert.has_error(function() c:request("GET", "x") end)
        assert.has_error(function() c:request("GET", "/a b") end)
    end)
end)
