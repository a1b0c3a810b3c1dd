-- The mock API itself (spec/mock/), seen through luasocket, and through the
-- curl command line where only a real HTTP client can tell (TLS, content
-- codings, curl's error codes for broken transfers).

local socket = require "socket"
local cjson = require "cjson"
local mock = require "support.mock"

local AUTH = "Bearer " .. mock.token
local SESSION_ID = "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f"
local SEEDED = { SESSION_ID, "demo", "a b/c", "..", "ünï/cødé?#&" }
local HOST, PORT = mock.base_url:match("^http://([^:/]+):(%d+)$")
PORT = tonumber(PORT)

-- Percent-encode every byte but ASCII letters, digits, "-", "_" and "~".
local function pct(s)
  return (s:gsub("[^%w%-_~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- The fixture text with its top-level id replaced, as the mock serves it.
local function expected_session(id)
  local fixture = mock.fixture("session.json")
  local s, e = fixture:find('"id": "<string>"', 1, true)
  assert(s, "fixture lost its id placeholder")
  return fixture:sub(1, s - 1) .. '"id": ' .. cjson.encode(id):gsub("\\/", "/") .. fixture:sub(e + 1)
end

-- One request on a fresh connection, bytes as they come. Returns
-- { status, headers (lower-case), body (raw, not de-chunked), err } where
-- err is luasocket's error if the connection failed before a clean close.
local function raw(path, headers, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout or 10)
  assert(c:connect(HOST, PORT))
  local req = { "GET " .. path .. " HTTP/1.1", "Host: " .. HOST .. ":" .. PORT,
                "Connection: close" }
  for k, v in pairs(headers or {}) do req[#req + 1] = k .. ": " .. v end
  assert(c:send(table.concat(req, "\r\n") .. "\r\n\r\n"))
  local data, err, partial = c:receive("*a")
  c:close()
  data = data or partial
  local head, body = data:match("^(.-)\r\n\r\n(.*)$")
  local res = { err = err, body = body or "", headers = {} }
  if head then
    res.status = tonumber(head:match("^HTTP/1%.1 (%d+)"))
    for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do
      res.headers[k:lower()] = v
    end
  end
  return res
end

-- GET with luasocket's HTTP client (de-chunks, follows the protocol).
local function get(path, headers)
  local body, status, h = mock.get(path, headers)
  assert(body, status)
  return status, body, h
end

local function authed(path)
  return get(path, { authorization = AUTH })
end

-- curl, exit code and stdout. args is a shell-quoted string.
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function curl(args)
  local p = assert(io.popen("curl --noproxy '*' -s --max-time 20 " .. args ..
                            " 2>/dev/null; echo \"<<exit=$?>>\""))
  local out = p:read("*a")
  p:close()
  local stdout, code = out:match("^(.*)<<exit=(%d+)>>\n?$")
  return tonumber(code), stdout
end

describe("mock API", function()
  setup(function() mock.reset() end)

  describe("GET /session/{id}", function()
    it("answers 401 with the API's body without a token", function()
      local status, body, h = get("/session/demo")
      assert.are.equal(401, status)
      assert.are.equal("application/json", h["content-type"])
      assert.are.same({
        message = "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.",
        error = "Unauthorized", statusCode = 401 }, cjson.decode(body))
    end)

    it("answers 401 for a wrong token or scheme", function()
      assert.are.equal(401, (get("/session/demo", { authorization = "Bearer nope" })))
      assert.are.equal(401, (get("/session/demo", { authorization = mock.token })))
      assert.are.equal(401, (get("/session/demo", { authorization = "Basic " .. mock.token })))
    end)

    it("answers 404 with a JSON body for an unknown id", function()
      local status, body, h = authed("/session/no-such-session")
      assert.are.equal(404, status)
      assert.are.equal("application/json", h["content-type"])
      assert.are.same({ message = "Session not found", error = "Not Found", statusCode = 404 },
                      cjson.decode(body))
    end)

    it("serves each seeded session byte for byte as the fixture with its id", function()
      local fixture = cjson.decode(mock.fixture("session.json"))
      for _, id in ipairs(SEEDED) do
        local status, body, h = authed("/session/" .. pct(id))
        assert.are.equal(200, status, id)
        assert.are.equal("application/json", h["content-type"])
        assert.are.equal(#body, tonumber(h["content-length"]))
        assert.are.equal(expected_session(id), body, id)
        fixture.id = id
        assert.are.same(fixture, cjson.decode(body))
      end
    end)

    it("serves each demo session as its element of demo/sessions.json is written", function()
      local text = mock.fixture("demo/sessions.json")
      local demo = cjson.decode(text)
      assert.are.equal(6, #demo)
      for _, want in ipairs(demo) do
        local status, body = authed("/session/" .. pct(want.id))
        assert.are.equal(200, status, want.id)
        assert.are.equal("{", body:sub(1, 1))
        assert.are.equal("}", body:sub(-1))
        assert.truthy(text:find(body, 1, true), "not a piece of the file: " .. want.id)
        assert.are.same(want, cjson.decode(body))
      end
      -- the newest of all seeded sessions is the newest demo session
      local _, page = authed("/session?limit=1")
      assert.are.equal("289afc20-3ca7-4376-862b-a96919eb4957", cjson.decode(page).results[1].id)
    end)

    it("takes the id from the raw path: %2F stays inside one segment", function()
      assert.are.equal(200, (authed("/session/a%20b%2Fc")))
      assert.are.equal(404, (authed("/session/a%20b/c")))
      local status, body = authed("/session/..")              -- not normalized away
      assert.are.equal(200, status)
      assert.are.equal("..", cjson.decode(body).id)
    end)

    it("answers the validation error on /session/invalid-input", function()
      assert.are.equal(401, (get("/session/invalid-input")))
      local status, body = authed("/session/invalid-input")
      assert.are.equal(400, status)
      assert.are.same({
        message = { "name must be shorter than or equal to 40 characters",
                    "status must be one of the following values: active, completed" },
        error = "Bad Request", statusCode = 400 }, cjson.decode(body))
    end)

    it("answers other methods and paths with a NestJS-style 404", function()
      local status, body = get("/nowhere")
      assert.are.equal(404, status)
      assert.are.equal("Cannot GET /nowhere", cjson.decode(body).message)
    end)
  end)

  describe("/__last_request", function()
    it("records the raw request URI and the headers", function()
      local path = "/session/" .. pct("ünï/cødé?#&") .. "?x=1"
      authed(path)
      local last = mock.last_request()
      assert.are.equal("GET", last.method)
      assert.are.equal(path, last.request_uri)
      assert.are.equal(AUTH, last.headers.authorization)
      assert.is_string(last.headers.host)
      assert.is_nil(last.body)
      local before = last.seq
      get("/session/demo", { ["x-probe"] = "1" })
      last = mock.last_request()
      assert.are.equal(before + 1, last.seq)
      assert.are.equal("1", last.headers["x-probe"])
      assert.is_nil(last.headers.authorization)
    end)

    it("is not changed by requests to helper routes", function()
      authed("/session/demo")
      local seq = mock.last_request().seq
      get("/__health")
      get("/__file/session.json")
      assert.are.equal(seq, mock.last_request().seq)
    end)
  end)

  describe("/__file/<name>", function()
    it("serves a fixture as application/json", function()
      local status, body, h = get("/__file/session.json")
      assert.are.equal(200, status)
      assert.are.equal("application/json", h["content-type"])
      assert.are.equal(mock.fixture("session.json"), body)
    end)

    it("refuses .. segments and answers 404 for missing files", function()
      assert.are.equal(400, (get("/__file/%2E%2E/mock/app.lua")))
      assert.are.equal(400, (get("/__file/x/../../mock/app.lua")))
      assert.are.equal(404, (get("/__file/no-such.json")))
    end)
  end)

  describe("fault routes", function()
    local session = expected_session(SESSION_ID)

    it("/fault/reset sends a partial body, then a TCP reset", function()
      local r = raw("/fault/reset")
      assert.are.equal(200, r.status)
      assert.are.equal(#session, tonumber(r.headers["content-length"]))
      assert.are.equal(session:sub(1, 1000), r.body)
      -- luasocket reports ECONNRESET as "closed" (a FIN gives no error).
      assert.are.equal("closed", r.err)
      assert.are.equal(56, (curl(q(mock.base_url .. "/fault/reset"))))
    end)

    it("/fault/short-body closes before Content-Length bytes", function()
      local r = raw("/fault/short-body")
      assert.are.equal(200, r.status)
      assert.are.equal(#session, tonumber(r.headers["content-length"]))
      assert.are.equal(1000, #r.body)
      assert.is_nil(r.err)   -- a clean FIN
      assert.are.equal(18, (curl(q(mock.base_url .. "/fault/short-body"))))
    end)

    it("/fault/chunked-truncated ends without the terminating chunk", function()
      local r = raw("/fault/chunked-truncated")
      assert.are.equal(200, r.status)
      assert.are.equal("chunked", r.headers["transfer-encoding"])
      assert.matches("^3e8\r\n", r.body)
      assert.is_nil(r.body:find("\r\n0\r\n\r\n", 1, true))
      assert.are.equal(18, (curl(q(mock.base_url .. "/fault/chunked-truncated"))))
    end)

    it("/fault/chunked-malformed sends a chunk size that is not hex", function()
      local r = raw("/fault/chunked-malformed")
      assert.are.equal("chunked", r.headers["transfer-encoding"])
      assert.matches("\r\nzz\r\n$", r.body)
      assert.are.equal(56, (curl(q(mock.base_url .. "/fault/chunked-malformed"))))
    end)

    it("/fault/stall sends headers, then nothing", function()
      local c = assert(socket.tcp())
      c:settimeout(5)
      assert(c:connect(HOST, PORT))
      assert(c:send("GET /fault/stall HTTP/1.1\r\nHost: x\r\n\r\n"))
      assert.are.equal("HTTP/1.1 200 OK", c:receive("*l"))
      repeat local line = assert(c:receive("*l")) until line == ""
      c:settimeout(1)
      local t0 = socket.gettime()
      local data, err = c:receive(1)
      c:close()
      assert.is_nil(data)
      assert.are.equal("timeout", err)
      assert.is_true(socket.gettime() - t0 >= 0.9)
    end)

    it("/fault/stall?s=N sends the session after N seconds", function()
      local t0 = socket.gettime()
      local status, body = get("/fault/stall?s=1")
      assert.are.equal(200, status)
      assert.are.equal(session, body)
      assert.is_true(socket.gettime() - t0 >= 0.9)
    end)

    it("/fault/slow trickles a valid body over about 2 s", function()
      local t0 = socket.gettime()
      local status, body = get("/fault/slow")
      local elapsed = socket.gettime() - t0
      assert.are.equal(200, status)
      assert.are.equal(session, body)
      assert.is_true(elapsed >= 1.8 and elapsed < 5, "took " .. elapsed)
    end)

    it("/fault/429 answers 429 with Retry-After and a JSON error", function()
      local status, body, h = get("/fault/429")
      assert.are.equal(429, status)
      assert.are.equal("1", h["retry-after"])
      assert.are.same({ message = "Too Many Requests", error = "Too Many Requests",
                        statusCode = 429 }, cjson.decode(body))
      local _, _, h2 = get("/fault/429?retry_after=7")
      assert.are.equal("7", h2["retry-after"])
    end)

    it("/fault/429?n=K succeeds after K failures per key", function()
      for _, key in ipairs({ "k429-a", "k429-b" }) do
        assert.are.equal(429, (get("/fault/429?n=2&key=" .. key)))
        assert.are.equal(429, (get("/fault/429?n=2&key=" .. key)))
        local status, body = get("/fault/429?n=2&key=" .. key)
        assert.are.equal(200, status)
        assert.are.equal(session, body)
      end
      local _, body = get("/__hits?key=k429-a")
      assert.are.same({ key = "k429-a", hits = 3 }, cjson.decode(body))
    end)

    it("/fault/503-once fails once per key", function()
      local status, body = get("/fault/503-once?key=k503")
      assert.are.equal(503, status)
      assert.are.same({ message = "Service Unavailable", error = "Service Unavailable",
                        statusCode = 503 }, cjson.decode(body))
      status, body = get("/fault/503-once?key=k503")
      assert.are.equal(200, status)
      assert.are.equal(session, body)
      assert.are.equal(503, (get("/fault/503-once?key=k503-other")))
    end)

    it("/fault/html502 is a proxy's HTML page", function()
      local status, body, h = get("/fault/html502")
      assert.are.equal(502, status)
      assert.are.equal("text/html", h["content-type"])
      assert.matches("^<html>", body)
    end)

    it("/fault/status?code=N answers N with an API-shaped body", function()
      for _, code in ipairs({ 400, 404, 418, 500, 504 }) do
        local status, body = get("/fault/status?code=" .. code)
        assert.are.equal(code, status)
        assert.are.equal(code, cjson.decode(body).statusCode)
      end
      local status, body = get("/fault/status?code=204")
      assert.are.equal(204, status)
      assert.are.equal("", body)
    end)

    it("/fault/gzip compresses only when gzip is accepted", function()
      local r = raw("/fault/gzip", { ["Accept-Encoding"] = "gzip" })
      assert.are.equal("gzip", r.headers["content-encoding"])
      assert.are.equal("\31\139", r.body:sub(1, 2))
      r = raw("/fault/gzip", { ["Accept-Encoding"] = "gzip;q=0, deflate" })
      assert.is_nil(r.headers["content-encoding"])
      assert.are.equal(session, r.body)
      r = raw("/fault/gzip")
      assert.is_nil(r.headers["content-encoding"])
      local code, out = curl("--compressed " .. q(mock.base_url .. "/fault/gzip"))
      assert.are.equal(0, code)
      assert.are.equal(session, out)
    end)

    it("/fault/deflate uses the zlib format when deflate is accepted", function()
      local r = raw("/fault/deflate", { ["Accept-Encoding"] = "deflate" })
      assert.are.equal("deflate", r.headers["content-encoding"])
      assert.are.equal(0x78, r.body:byte(1))
      local code, out = curl("-H 'Accept-Encoding: deflate' --compressed " ..
                             q(mock.base_url .. "/fault/deflate"))
      assert.are.equal(0, code)
      assert.are.equal(session, out)
    end)

    it("/fault/gzip-bomb is a small gzip body of 200 MiB of JSON", function()
      local r = raw("/fault/gzip-bomb", nil, 60)
      assert.are.equal(200, r.status)
      assert.are.equal("gzip", r.headers["content-encoding"])
      assert.is_true(#r.body < 1024 * 1024)
      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb")); f:write(r.body); f:close()
      local p = assert(io.popen("gzip -dc " .. q(tmp) .. " | wc -c"))
      local size = tonumber(p:read("*a")); p:close()
      p = assert(io.popen("gzip -dc " .. q(tmp) .. " 2>/dev/null | head -c 8"))
      local start = p:read("*a"); p:close()
      os.remove(tmp)
      assert.are.equal(200 * 1024 * 1024, size)
      assert.are.equal("[0,0,0,0", start)
    end)

    it("/fault/big?mb=N is valid JSON of exactly N MiB", function()
      local status, body, h = get("/fault/big?mb=3")
      assert.are.equal(200, status)
      assert.are.equal(3 * 1048576, #body)
      assert.are.equal(#body, tonumber(h["content-length"]))
      local t = cjson.decode(body)
      assert.are.equal(3 * 1024, #t)
      local _, empty = get("/fault/big?mb=0")
      assert.are.equal("[]", empty)
    end)

    it("/fault/delay?ms=N answers after N ms and overlaps requests", function()
      local n, ms = 6, 500
      local conns = {}
      local t0 = socket.gettime()
      for i = 1, n do
        local c = assert(socket.tcp())
        c:settimeout(10)
        assert(c:connect(HOST, PORT))
        assert(c:send("GET /fault/delay?ms=" .. ms .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        conns[i] = c
      end
      for i = 1, n do
        local data = assert(conns[i]:receive("*a"))
        conns[i]:close()
        assert.matches("^HTTP/1%.1 200 OK\r\n", data)
        assert.are.equal(session, data:match("\r\n\r\n(.*)$"))
      end
      local elapsed = socket.gettime() - t0
      assert.is_true(elapsed >= ms / 1000 * 0.9, "took " .. elapsed)
      assert.is_true(elapsed < n * ms / 1000 / 2, "not concurrent: " .. elapsed)
    end)

    it("counts ?key= on every fault route in /__hits", function()
      get("/fault/status?code=500&key=khits")
      get("/fault/delay?ms=0&key=khits")
      local _, body = get("/__hits?key=khits")
      assert.are.equal(2, cjson.decode(body).hits)
      _, body = get("/__hits?key=never-used")
      assert.are.equal(0, cjson.decode(body).hits)
    end)
  end)

  describe("HTTPS listener", function()
    local ca = q(mock.ca_file)
    local auth = q("Authorization: " .. AUTH)

    it("serves the same routes with a certificate for 127.0.0.1", function()
      local code, out = curl("--cacert " .. ca .. " -H " .. auth .. " " ..
                             q(mock.https_url .. "/session/demo"))
      assert.are.equal(0, code)
      assert.are.equal(expected_session("demo"), out)
    end)

    it("has a certificate valid for localhost too", function()
      local port = mock.https_url:match(":(%d+)$")
      local code = curl("--cacert " .. ca .. " --resolve localhost:" .. port ..
                        ":127.0.0.1 " .. q("https://localhost:" .. port .. "/__health"))
      assert.are.equal(0, code)
    end)

    it("is not trusted without the test CA", function()
      assert.are.equal(60, (curl(q(mock.https_url .. "/__health"))))
    end)

    it("breaks transfers the same way", function()
      assert.are.equal(56, (curl("--cacert " .. ca .. " " .. q(mock.https_url .. "/fault/reset"))))
      assert.are.equal(18, (curl("--cacert " .. ca .. " " .. q(mock.https_url .. "/fault/short-body"))))
    end)
  end)
end)
