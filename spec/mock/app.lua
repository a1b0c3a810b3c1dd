--[[
Local mock of the cozmox API (https://api.cozmox.ai), run by nginx with
lua-nginx-module; started by scripts/with-mock.sh, which exports
COZMOX_BASE_URL, COZMOX_TEST_HTTPS_URL (same routes over TLS, certificate
from a throw-away CA in COZMOX_TEST_CA_FILE), COZMOX_TOKEN and
COZMOX_TEST_FIXTURES.

Routing is done here on the raw $request_uri, so a path segment is exactly
what the client put on the wire: /session/a%2Fb is the one id "a/b", and
/session/%2E%2E is the id "..". Error bodies have the API's shape:
  {"message": ..., "error": <reason phrase>, "statusCode": <status>}
JSON responses carry "Content-Type: application/json" and a Content-Length.

API routes (need "Authorization: Bearer $COZMOX_TOKEN", else 401 with the
API's "Invalid Key. Hot tip, ..." body):
  GET /session/{id}          200 + the stored session JSON, or 404
                             {"message":"Session not found",...}. Seeded ids:
                             "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f", "demo",
                             "a b/c", "..", "ünï/cødé?#&"; each is
                             spec/fixtures/session.json byte for byte except
                             the top-level "id" value. Also seeded: the demo
                             sessions of spec/fixtures/demo/sessions.json
                             (realistic support calls, created in June 2025),
                             each served as its array element is written
                             there.
  GET /session/invalid-input 400 with the API's validation error (message is
                             an array of strings).
  GET /session               a page of sessions (sessions.lua):
                             {"results":[...],"metadata":{"itemsPerPage",
                             "totalItems","currentPage"}}. Query: page
                             (default 1), limit (default 100, 1..1000),
                             sortOrder ASC|DESC (default DESC; sorted on
                             createdAt, then creation order), name,
                             assistantId, workflowId (exact match on the
                             top-level field), createdAt{Gt,Lt,Ge,Le},
                             updatedAt{Gt,Lt,Ge,Le} (ISO 8601). Bad or
                             unknown params: 400, message an array of
                             class-validator style strings (sorted).
  POST /session              201 + a new session: id (random UUID v4),
                             orgId, createdAt = updatedAt (ISO 8601 with
                             milliseconds, Z), then the body's members in
                             the API's order, status default "active",
                             expirationSeconds default 86400 (null members
                             are left out). Allowed members: name (<= 40
                             characters), status (active|completed),
                             expirationSeconds (integer 60..2592000),
                             assistantId, assistant, messages, customer,
                             phoneNumberId, phoneNumber; null passes for all
                             but status and expirationSeconds; others give
                             "property X should not exist". Any violation:
                             400 with every message in an array.
  PATCH /session/{id}        200 + the session with the body's members
                             replaced (as text) or appended and updatedAt
                             set to now; same validation; 404 if unknown.
  DELETE /session/{id}       200 + the session as it was, then it is gone;
                             404 if unknown.
  other methods              404 "Cannot METHOD /path" (NestJS style).
  Stored sessions are JSON text and are never re-encoded: a seeded session
  stays byte for byte the fixture until it is updated.

Test helpers (no auth):
  GET /__health              200 {"ok":true}; with-mock.sh polls it.
  GET /__last_request        {"seq","method","request_uri","connection",
                             "connection_requests","headers","body"}
                             of the latest /session or /fault request:
                             request_uri is raw, header names lower-case
                             (a repeated header gives an array of values),
                             body only when the request had one. 404 before
                             any such request.
  GET /__connections         {"count":N}: distinct connections the /session
                             and /fault requests came on since the last reset.
  GET /__hits?key=K          {"key":K,"hits":N}: how many /fault requests
                             carried ?key=K (counts retries).
  ANY /__reset               re-seed the sessions, forget requests and
                             counters; 200 {"ok":true}.
  GET /__fail?method=M&skip=N&count=C&status=S
                             after N more authorized /session... requests
                             with method M (default GET; list and single
                             session alike), the next C (default 1) fail
                             with status S (default 500) and an API-shaped
                             error body; /__reset disarms it.
  GET /__file/<name>         spec/fixtures/<name> (percent-decoded; may
                             contain "/", never a ".." segment) as
                             application/json; 404 if absent, 400 if bad.

Fault routes (no auth; "the session" = the seeded 3f6c2f7e-... session).
Every one takes an optional ?key=K that /__hits counts.
  /fault/reset               200 headers with the full Content-Length and
                             the first 1000 body bytes, then a TCP RST
                             (SO_LINGER 0). curl: 56 (recv failure:
                             connection reset by peer).
  /fault/stall[?s=N]         200 headers (chunked), then nothing for N
                             seconds (default 30), then the session.
  /fault/slow[?ms=N]         200, valid session body with Content-Length,
                             trickled in 20 pieces over N ms (default 2000).
  /fault/429[?n=K&key=X&retry_after=S]
                             429 + "Retry-After: S" (default 1) + JSON error.
                             With n=K: the first K requests for key X (default
                             "default") get the 429, later ones 200 + session.
  /fault/429?date=1&...       the same with Retry-After as an HTTP-date.
  /fault/ratelimit[?n=K&key=X&reset_in=S]
                             429 with "X-RateLimit-Reset: now+S" (epoch
                             seconds, default S=2) and no Retry-After; n/key
                             as for /fault/429.
  /fault/redirect?to=URL     302 with "Location: URL".
  /fault/503-once?key=X      first request for key X: 503 + JSON error; later
                             ones 200 + the session.
  /fault/html502             502, Content-Type text/html, a proxy's HTML
                             error page (not JSON).
  /fault/chunked-truncated   200, Transfer-Encoding: chunked, two complete
                             chunks (a prefix of the session), then the
                             connection is closed (FIN) with no terminating
                             0-size chunk. curl: 18 (partial file).
  /fault/chunked-malformed   200, Transfer-Encoding: chunked, one chunk,
                             then a chunk-size line that is not hex, then
                             FIN. curl: 56 (chunked-encoding error).
  /fault/short-body          200 with Content-Length of the whole session but
                             only 1000 body bytes, then FIN. curl: 18.
  /fault/gzip                the session, gzip-compressed with
                             "Content-Encoding: gzip", when Accept-Encoding
                             allows gzip; otherwise uncompressed.
  /fault/deflate             same with "Content-Encoding: deflate" (zlib
                             format, RFC 1950) when deflate is accepted.
  /fault/gzip-bomb           always "Content-Encoding: gzip": ~200 KB that
                             inflate to 200 MiB of valid JSON ([0,0,...,0]).
                             Prepared in the background by with-mock.sh;
                             the first request may wait for it.
  /fault/big?mb=N            valid JSON of exactly N MiB (0..1024; an array
                             of 1 KiB strings), streamed, with Content-Length.
  /fault/delay?ms=N          200 + the session after N ms (non-blocking
                             ngx.sleep: concurrent requests overlap).
  /fault/status?code=N[&n=K&key=X] (n/key: 200 + session after K failures)
  /fault/status?code=N       status N (200..599) with an API-shaped JSON
                             error body (no body for 204 and 304).
  /fault/trickle[?ms=N&bytes=B]  200 with Content-Length; the first B body
                             bytes (default all) sent one byte every N ms
                             (default 100), then the rest.
  /fault/gzip-only           406 unless Accept-Encoding allows gzip; then the
                             session, gzip-compressed.
  /fault/raw?head=NAME       a hand-written hostile response (faults.lua's
                             HOSTILE_HEADS: status-2000, status-none,
                             length-same, length-differ, chunk-size-bad,
                             chunk-size-huge, header-1mb, reason-200kb,
                             header-repeats, header-garbage, gzip-trailing,
                             gzip-truncated), then the connection closes.
  /fault/drop-next           200 + the session, keep-alive; the next request
                             on the same connection is dropped unanswered.
  /fault/own-retry-after?key=K[&retry_after=S]
                             first request for K: 429 + "Retry-After: S";
                             then 200 + the session.
  /fault/echo-auth           401 whose message echoes the Authorization header.
  /fault/echo-html           502 HTML page listing the request headers.
  /fault/ctl-message         500 whose JSON message has CR, LF and ESC.
  /fault/ok                  200 + the session.
  /fault/tiny?mb=N[&broken=1]  [{},{},...] of about N MiB, chunked; broken:
                             it ends with "x" instead of "]".
  /fault/bigstring?mb=N      {"id":"bigstring","s":"<N MiB of x>"}, chunked.
  /fault/by-id/session/<id>  the route and arguments named by the id
                             ("delay?ms=300" is /fault/delay?ms=300), the
                             session served carrying that id: the fault
                             routes through session.get and get_many.
Unknown paths: 404 "Cannot METHOD /path".
]]

local cjson = require "cjson.safe"
local store = require "store"
local sessions = require "sessions"

local ngx = ngx
local ngx_var, ngx_req, ngx_shared = ngx.var, ngx.req, ngx.shared
local unescape_uri = ngx.unescape_uri
local str_find, str_sub, str_match = string.find, string.sub, string.match

local _M = {}

local config = {}      -- token, fixtures, tmp: set by init() in the master

-- Reason phrases used in error bodies.
local REASONS = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [418] = "I'm a teapot", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}
_M.REASONS = REASONS

local UNAUTHORIZED_BODY =
  '{"message":"Invalid Key. Hot tip, you may be using the private key ' ..
  'instead of the public key, or vice versa.","error":"Unauthorized",' ..
  '"statusCode":401}'
local NOT_FOUND_BODY =
  '{"message":"Session not found","error":"Not Found","statusCode":404}'
local INVALID_INPUT_BODY =
  '{"message":["name must be shorter than or equal to 40 characters",' ..
  '"status must be one of the following values: active, completed"],' ..
  '"error":"Bad Request","statusCode":400}'

-- Called once from init_by_lua (master process): read the environment and
-- seed the session store.
function _M.init()
  config.token = os.getenv("COZMOX_TOKEN")
  config.fixtures = os.getenv("COZMOX_TEST_FIXTURES")
  config.tmp = os.getenv("COZMOX_MOCK_TMP")
  if not config.token or config.token == "" then
    error("mock: COZMOX_TOKEN is not set")
  end
  if not config.fixtures then
    error("mock: COZMOX_TEST_FIXTURES is not set")
  end
  assert(require("cjson"), "cjson must load")
  store.seed(config.fixtures)
end

function _M.config() return config end

-- Send a complete response whose body is the string body.
local function send(status, content_type, body, headers)
  ngx.status = status
  ngx.header["Content-Type"] = content_type
  if headers then
    for k, v in pairs(headers) do ngx.header[k] = v end
  end
  if status == 204 or status == 304 then
    return ngx.exit(status)
  end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)
end
_M.send = send

local function send_json(status, body, headers)
  return send(status, "application/json", body, headers)
end
_M.send_json = send_json

-- An API-shaped error body, members in the API's order.
local function error_body(status, message)
  local reason = REASONS[status] or "Error"
  local json_string = store.json_string
  return '{"message":' .. json_string(message or reason) ..
         ',"error":' .. json_string(reason) ..
         ',"statusCode":' .. status .. '}'
end
_M.error_body = error_body

local function send_error(status, message, headers)
  return send_json(status, error_body(status, message), headers)
end
_M.send_error = send_error

local function cannot(method, path)
  return send_error(404, "Cannot " .. method .. " " .. path)
end

-- Remember the request for /__last_request.
local function record(method)
  ngx_req.read_body()
  local state = ngx_shared.state
  local seq = state:incr("seq", 1, 0)
  local body = ngx_req.get_body_data()
  state:set("last_request", cjson.encode({
    seq = seq,
    method = method,
    request_uri = ngx_var.request_uri,
    connection = tonumber(ngx_var.connection),
    connection_requests = tonumber(ngx_var.connection_requests),
    headers = ngx_req.get_headers(200),
    body = body,
  }))
  if state:add("conn:" .. ngx_var.connection, true) then state:incr("connections", 1, 0) end
end

-- Exactly one Authorization header, exactly "Bearer <token>".
local function authorized()
  return ngx_req.get_headers(200).authorization == "Bearer " .. config.token
end

-- /session/<raw> and /session
local function session_route(method, path)
  if not authorized() then
    return send_json(401, UNAUTHORIZED_BODY)
  end
  local fail_status = sessions.failure(method)
  if fail_status then return send_error(fail_status) end
  if path == "/session" then
    if method == "GET" or method == "HEAD" then return sessions.list(_M) end
    if method == "POST" then return sessions.create(_M) end
    return cannot(method, path)
  end
  local raw = str_match(path, "^/session/([^/]+)$")
  if raw and method == "PATCH" then
    return sessions.update(_M, unescape_uri(raw), NOT_FOUND_BODY)
  elseif raw and method == "DELETE" then
    return sessions.delete(_M, unescape_uri(raw), NOT_FOUND_BODY)
  end
  if not raw or (method ~= "GET" and method ~= "HEAD") then
    return cannot(method, path)
  end
  if raw == "invalid-input" then
    return send_json(400, INVALID_INPUT_BODY)
  end
  local json = store.get(unescape_uri(raw))
  if not json then
    return send_json(404, NOT_FOUND_BODY)
  end
  return send_json(200, json)
end

local function file_route(path)
  local name = unescape_uri(str_sub(path, #"/__file/" + 1))
  if name == "" or str_sub(name, 1, 1) == "/" or str_find(name, "\0", 1, true) then
    return send_error(400, "bad file name")
  end
  for seg in string.gmatch(name, "[^/]+") do
    if seg == ".." then return send_error(400, "bad file name") end
  end
  local data = store.read_file(config.fixtures .. "/" .. name)
  if not data then
    return send_error(404, "no such fixture: " .. name)
  end
  return send_json(200, data)
end

local function meta_route(method, path)
  if path == "/__health" then
    return send_json(200, '{"ok":true}')
  elseif path == "/__last_request" then
    local last = ngx_shared.state:get("last_request")
    if not last then return send_error(404, "no request recorded yet") end
    return send_json(200, last)
  elseif path == "/__connections" then
    return send_json(200, cjson.encode({ count = ngx_shared.state:get("connections") or 0 }))
  elseif path == "/__hits" then
    local key = ngx_req.get_uri_args().key
    if type(key) ~= "string" then return send_error(400, "key required") end
    local hits = ngx_shared.state:get("hits:" .. key) or 0
    return send_json(200, cjson.encode({ key = key, hits = hits }))
  elseif path == "/__reset" then
    ngx_shared.state:flush_all()
    ngx_shared.sessions:flush_all()
    store.seed(config.fixtures)
    return send_json(200, '{"ok":true}')
  elseif path == "/__fail" then
    return sessions.arm_failures(_M)
  elseif str_sub(path, 1, 8) == "/__file/" and method == "GET" then
    return file_route(path)
  end
  return cannot(method, path)
end

function _M.handle()
  local method = ngx_req.get_method()
  local uri = ngx_var.request_uri
  local q = str_find(uri, "?", 1, true)
  local path = q and str_sub(uri, 1, q - 1) or uri

  require("faults").drop_marked()
  if path == "/session" or str_sub(path, 1, 9) == "/session/" then
    record(method)
    return session_route(method, path)
  elseif str_sub(path, 1, 7) == "/fault/" then
    record(method)
    return require("faults").handle(_M, method, path)
  elseif str_sub(path, 1, 3) == "/__" then
    return meta_route(method, path)
  end
  return cannot(method, path)
end

return _M
