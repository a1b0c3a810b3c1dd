-- Fault routes of the mock API (/fault/...); app.lua's header documents
-- each one. Responses that nginx's HTTP layer cannot produce (a body cut
-- short, a reset) are written by hand on the raw downstream socket.

local ffi = require "ffi"
local base = require "resty.core.base"
local store = require "store"

local ngx = ngx
local ngx_req, ngx_shared = ngx.req, ngx.shared
local tonumber, floor = tonumber, math.floor
local str_rep, str_sub, str_format, str_lower = string.rep, string.sub, string.format, string.lower

ffi.cdef [[
struct mock_linger { int l_onoff; int l_linger; };
int setsockopt(int sockfd, int level, int optname, const void *optval,
               unsigned int optlen);
]]

local SOL_SOCKET, SO_LINGER = 1, 13
local HTTP_SIGNATURE = 0x50545448   -- "HTTP", first field of ngx_http_request_t

local _M = {}

-- The session a fault route serves: the seeded one, or -- for a
-- /fault/by-id/session/<id> request -- the same document with that id.
local function session_json()
  local id = ngx.ctx.by_id
  if id then return store.with_id(store.template, id) end
  return store.get(store.DEFAULT_ID) or store.with_id(store.template, store.DEFAULT_ID)
end

-- Integer query argument, clamped to [lo, hi]; def when absent or bad.
local function int_arg(args, name, def, lo, hi)
  local v = tonumber(args[name])
  if not v then return def end
  v = floor(v)
  if v < lo then return lo end
  if v > hi then return hi end
  return v
end

-- The file descriptor of the client connection: ngx_http_request_t starts
-- with { uint32_t signature; ngx_connection_t *connection; ... } and
-- ngx_connection_t with { void *data, *read, *write; ngx_socket_t fd; ... }
-- (stable nginx layouts). Returns nil if the signature does not match.
local function client_fd()
  local r = base.get_request()
  if r == nil then return nil end
  if ffi.cast("uint32_t *", r)[0] ~= HTTP_SIGNATURE then return nil end
  local c = ffi.cast("void **", r)[1]
  return ffi.cast("int *", ffi.cast("void **", c) + 3)[0]
end

-- Make the coming close() send a RST instead of a FIN.
local function arm_reset()
  local fd = client_fd()
  if not fd then
    ngx.log(ngx.ERR, "mock: cannot find the client fd; closing normally")
    return false
  end
  local l = ffi.new("struct mock_linger", 1, 0)
  if ffi.C.setsockopt(fd, SOL_SOCKET, SO_LINGER, l, ffi.sizeof(l)) ~= 0 then
    ngx.log(ngx.ERR, "mock: setsockopt(SO_LINGER) failed")
    return false
  end
  return true
end

-- Write bytes on the raw client socket (nginx sends nothing of its own).
local function raw_send(data)
  ngx_req.read_body()
  local sock, err = ngx_req.socket(true)
  if not sock then
    ngx.log(ngx.ERR, "mock: raw socket: ", err)
    return ngx.exit(500)
  end
  local ok, serr = sock:send(data)
  if not ok then ngx.log(ngx.WARN, "mock: raw send: ", serr) end
  return sock
end

-- End the request by closing the connection without any further bytes.
local function close_connection()
  return ngx.exit(444)
end

local function head(status_line, headers)
  local t = { "HTTP/1.1 " .. status_line }
  for _, h in ipairs(headers) do t[#t + 1] = h end
  t[#t + 1] = "Connection: close"
  return table.concat(t, "\r\n") .. "\r\n\r\n"
end

local function f_reset()
  local body = session_json()
  raw_send(head("200 OK", { "Content-Type: application/json",
                            "Content-Length: " .. #body }) ..
           str_sub(body, 1, 1000))
  ngx.sleep(0.2)      -- let the bytes reach the client before the RST
  arm_reset()
  return close_connection()
end

local function f_short_body()
  local body = session_json()
  raw_send(head("200 OK", { "Content-Type: application/json",
                            "Content-Length: " .. #body }) ..
           str_sub(body, 1, 1000))
  ngx.sleep(0.05)
  return close_connection()
end

local function f_chunked_truncated()
  local body = session_json()
  local c1, c2 = str_sub(body, 1, 1000), str_sub(body, 1001, 3000)
  raw_send(head("200 OK", { "Content-Type: application/json",
                            "Transfer-Encoding: chunked" }) ..
           str_format("%x\r\n%s\r\n%x\r\n%s\r\n", #c1, c1, #c2, c2))
  ngx.sleep(0.05)
  return close_connection()
end

local function f_chunked_malformed()
  local c1 = str_sub(session_json(), 1, 1000)
  raw_send(head("200 OK", { "Content-Type: application/json",
                            "Transfer-Encoding: chunked" }) ..
           str_format("%x\r\n%s\r\nzz\r\n", #c1, c1))
  ngx.sleep(0.05)
  return close_connection()
end

local function f_stall(_, args)
  local secs = int_arg(args, "s", 30, 0, 3600)
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.send_headers()
  ngx.flush(true)
  ngx.sleep(secs)
  ngx.print(session_json())
  return ngx.exit(ngx.HTTP_OK)
end

local function f_slow(_, args)
  local ms = int_arg(args, "ms", 2000, 0, 600000)
  local body = session_json()
  local pieces = 20
  local size = math.ceil(#body / pieces)
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  for i = 1, pieces do
    ngx.print(str_sub(body, (i - 1) * size + 1, i * size))
    ngx.flush(true)
    if i < pieces then ngx.sleep(ms / 1000 / (pieces - 1)) end
  end
  return ngx.exit(ngx.HTTP_OK)
end

-- With ?n=K: true once K requests for ?key= (prefix p) have failed.
local function recovered(args, prefix)
  local n = args.n and int_arg(args, "n", 0, 0, 1e9)
  if not n then return false end
  local key = type(args.key) == "string" and args.key or "default"
  return ngx_shared.state:incr(prefix .. key, 1, 0) > n
end

local function f_429(app, args)
  local retry_after = int_arg(args, "retry_after", 1, 0, 86400)
  if recovered(args, "429:") then return app.send_json(200, session_json()) end
  local value = tostring(retry_after)
  if args.date then value = ngx.http_time(ngx.time() + retry_after) end
  return app.send_error(429, nil, { ["Retry-After"] = value })
end

-- 429 with only "X-RateLimit-Reset: <epoch seconds>" (now + reset_in).
local function f_ratelimit(app, args)
  if recovered(args, "rl:") then return app.send_json(200, session_json()) end
  local reset_in = int_arg(args, "reset_in", 2, 0, 86400)
  return app.send_error(429, nil, { ["X-RateLimit-Reset"] = tostring(ngx.time() + reset_in) })
end

-- 302 to ?to= (an absolute URL), for redirect tests.
local function f_redirect(app, args)
  local to = type(args.to) == "string" and args.to or "/session/demo"
  ngx.header["Location"] = to
  return app.send(302, "text/plain", "redirecting\n")
end

local function f_503_once(app, args)
  local key = type(args.key) == "string" and args.key or "default"
  if ngx_shared.state:add("503:" .. key, true) then
    return app.send_error(503)
  end
  return app.send_json(200, session_json())
end

local HTML_502 = table.concat({
  "<html>",
  "<head><title>502 Bad Gateway</title></head>",
  "<body>",
  "<center><h1>502 Bad Gateway</h1></center>",
  "<hr><center>nginx</center>",
  "</body>",
  "</html>",
  "",
}, "\r\n")

local function f_html502(app)
  return app.send(502, "text/html", HTML_502)
end

-- Whether Accept-Encoding allows coding (a token, "*" also counts; q=0 refuses).
local function accepts(coding)
  local ae = ngx_req.get_headers(200)["accept-encoding"]
  if type(ae) == "table" then ae = table.concat(ae, ",") end
  if not ae then return false end
  local star = false
  for item in string.gmatch(str_lower(ae), "[^,]+") do
    local name = item:match("^%s*([^;%s]+)")
    local q = tonumber(item:match(";%s*q%s*=%s*([%d.]+)") or "1")
    if name == coding or (coding == "gzip" and name == "x-gzip") then
      return q > 0
    elseif name == "*" then
      star = q > 0
    end
  end
  return star
end

local function compressed(app, coding)
  local body = session_json()
  if accepts(coding) then
    body = require("zlib")[coding](body)
    return app.send(200, "application/json", body,
                    { ["Content-Encoding"] = coding, ["Vary"] = "Accept-Encoding" })
  end
  return app.send(200, "application/json", body, { ["Vary"] = "Accept-Encoding" })
end

local bomb   -- cached per worker

local function f_gzip_bomb(app)
  if not bomb then
    local path = app.config().tmp .. "/bomb.json.gz"
    for _ = 1, 600 do                  -- with-mock.sh writes it at start-up
      bomb = store.read_file(path)
      if bomb then break end
      ngx.sleep(0.05)
    end
    if not bomb then return app.send_error(500, "gzip bomb not prepared") end
  end
  return app.send(200, "application/json", bomb, { ["Content-Encoding"] = "gzip" })
end

local MIB = 1048576

local function f_big(_, args)
  local mb = int_arg(args, "mb", 1, 0, 1024)
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = mb == 0 and 2 or mb * MIB
  if mb == 0 then ngx.print("[]"); return ngx.exit(ngx.HTTP_OK) end
  -- "[" + (mb*1024 - 1) items of 1024 bytes `"x...x",` + `"x...x"]` (1023).
  local item = '"' .. str_rep("x", 1021) .. '",'
  local block = str_rep(item, 1024)                     -- 1 MiB
  local items = mb * 1024 - 1
  ngx.print("[")
  local full, rest = floor(items / 1024), items % 1024
  for _ = 1, full do
    ngx.print(block)
    ngx.flush(true)
  end
  ngx.print(str_rep(item, rest), '"', str_rep("x", 1020), '"]')
  return ngx.exit(ngx.HTTP_OK)
end

-- [{},{},...] of about ?mb=N MiB (streamed, chunked); ?broken=1 ends it
-- with a byte that is not JSON, so it fails only at the very end.
local function f_tiny(_, args)
  local mb = int_arg(args, "mb", 1, 1, 256)
  local per_block = floor(MIB / 3)
  local block = str_rep("{},", per_block)
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.print("[")
  for _ = 1, mb do
    ngx.print(block)
    ngx.flush(true)
  end
  ngx.print(args.broken and "{}x" or "{}]")
  return ngx.exit(ngx.HTTP_OK)
end

-- One JSON string of ?mb=N MiB: {"s":"xxx...x"} (streamed, chunked).
local function f_bigstring(_, args)
  local mb = int_arg(args, "mb", 1, 1, 256)
  local block = str_rep("x", MIB)
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.print('{"id":"bigstring","s":"')
  for _ = 1, mb do
    ngx.print(block)
    ngx.flush(true)
  end
  ngx.print('"}')
  return ngx.exit(ngx.HTTP_OK)
end

local function f_delay(app, args)
  ngx.sleep(int_arg(args, "ms", 0, 0, 600000) / 1000)
  return app.send_json(200, session_json())
end

local function f_status(app, args)
  local code = int_arg(args, "code", 500, 200, 599)
  if recovered(args, "status:" .. code .. ":") then return app.send_json(200, session_json()) end
  return app.send_error(code)
end


-- A body of `bytes` bytes (default: the whole session) sent one byte every
-- ms milliseconds, with its Content-Length.
local function f_trickle(_, args)
  local ms = int_arg(args, "ms", 100, 0, 60000)
  local body = session_json()
  local n = int_arg(args, "bytes", #body, 1, #body)
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  for i = 1, n do
    ngx.print(str_sub(body, i, i))
    ngx.flush(true)
    ngx.sleep(ms / 1000)
  end
  ngx.print(str_sub(body, n + 1))
  return ngx.exit(ngx.HTTP_OK)
end

-- 406 unless the request accepts gzip; then the session gzip-compressed.
local function f_gzip_only(app)
  local accepts_gzip = false
  local ae = ngx_req.get_headers(200)["accept-encoding"]
  if type(ae) == "table" then ae = table.concat(ae, ",") end
  for item in string.gmatch(str_lower(ae or ""), "[^,]+") do
    local name = item:match("^%s*([^;%s]+)")
    local q = tonumber(item:match(";%s*q%s*=%s*([%d.]+)") or "1")
    if name == "gzip" and q > 0 then accepts_gzip = true end
  end
  if not accepts_gzip then return app.send_error(406, "this route insists on gzip") end
  return app.send(200, "application/json", require("zlib").gzip(session_json()),
                  { ["Content-Encoding"] = "gzip", ["Vary"] = "Accept-Encoding" })
end

-- A raw response head written by hand: ?head=NAME picks one of these.
local HOSTILE_HEADS = {
  -- a status code of four digits
  ["status-2000"] = function() return "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}" end,
  -- no status code at all
  ["status-none"] = function() return "HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\n{}" end,
  -- two Content-Length headers that agree, keep-alive: must be accepted
  ["length-same"] = function(body)
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body ..
           "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  end,
  -- two that disagree: must be refused
  ["length-differ"] = function(body)
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body ..
           "\r\nContent-Length: " .. (#body + 10) .. "\r\n\r\n" .. body
  end,
  -- a chunk size that is not hex
  ["chunk-size-bad"] = function()
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "2\r\n{}\r\nnot-hex\r\n"
  end,
  -- a chunk size too large for any number
  ["chunk-size-huge"] = function()
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "ffffffffffffffffffffffff\r\n{}"
  end,
  -- a header section of 1 MB in one line
  ["header-1mb"] = function()
    return "HTTP/1.1 200 OK\r\nX-Big: " .. str_rep("a", 1024 * 1024) .. "\r\nContent-Length: 2\r\n\r\n{}"
  end,
  -- a reason phrase of 200 KB
  ["reason-200kb"] = function()
    return "HTTP/1.1 200 " .. str_rep("r", 200 * 1024) .. "\r\nContent-Length: 2\r\n\r\n{}"
  end,
  -- 20,000 repeats of one header (400 KB)
  ["header-repeats"] = function()
    return "HTTP/1.1 200 OK\r\n" .. str_rep("X-Rep: abcdefghijklm\r\n", 20000) .. "Content-Length: 2\r\n\r\n{}"
  end,
  -- the first header line folded (obs-fold with nothing to continue)
  ["folded-first"] = function()
    return "HTTP/1.1 200 OK\r\n X-Folded: y\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
  end,
  -- header values whose blanks make a backtracking pattern quadratic
  ["blank-runs"] = function(body)
    local blanks = str_rep(" ", 40000)
    return "HTTP/1.1 200 OK\r\nX-A: a" .. blanks .. "b\r\nX-B: a" .. blanks .. "b\r\nContent-Length:" .. blanks ..
           #body .. blanks .. "\r\n\r\n" .. body
  end,
  -- a 503 whose X-RateLimit-Reset is 60,000 digits and then an x
  ["reset-digits"] = function()
    return "HTTP/1.1 503 Service Unavailable\r\nX-RateLimit-Reset: " .. str_rep("1", 60000) ..
           "x\r\nContent-Length: 2\r\n\r\n{}"
  end,
  -- a head and lines ending in a bare LF (curl accepts them)
  ["bare-lf"] = function(body)
    return "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: " .. #body .. "\n\n" .. body
  end,
  -- a status code below 100
  ["status-099"] = function() return "HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\n{}" end,
  -- an empty body in a coding nobody asked for: nothing to decode
  ["empty-br"] = function()
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n"
  end,
  -- a chunked body whose trailer section names headers of its own
  ["trailers"] = function(body)
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           string.format("%x\r\n", #body) .. body .. "\r\n0\r\nX-Trailer: late\r\nRetry-After: 99\r\n\r\n"
  end,
  -- two Location headers (a redirect that cannot be followed)
  ["two-locations"] = function()
    return "HTTP/1.1 302 Found\r\nLocation: /fault/by-id/session/ok\r\nLocation: /other\r\n" ..
           "Content-Length: 0\r\n\r\n"
  end,
  -- a header line without a colon
  ["header-garbage"] = function()
    return "HTTP/1.1 200 OK\r\nthis is not a header\r\nContent-Length: 2\r\n\r\n{}"
  end,
  -- a 2xx body that is not JSON
  ["bad-json"] = function()
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\": 1,"
  end,
  -- gzip followed by garbage
  ["gzip-trailing"] = function(body)
    local z = require("zlib").gzip(body) .. "GARBAGE"
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: " ..
           #z .. "\r\n\r\n" .. z
  end,
  -- a gzip stream cut short (Content-Length matches what is sent)
  ["gzip-truncated"] = function(body)
    local z = require("zlib").gzip(body)
    z = str_sub(z, 1, floor(#z / 2))
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: " ..
           #z .. "\r\n\r\n" .. z
  end,
}

-- The whole response as raw bytes, then the connection closes.  The
-- header section is sent in pieces so the big ones stream.
local function f_raw(app, args)
  local make = HOSTILE_HEADS[args.head or ""]
  if not make then return app.send_error(400, "unknown head") end
  local data = make(session_json())
  ngx_req.read_body()
  local sock = ngx_req.socket(true)
  if not sock then return ngx.exit(500) end
  for i = 1, #data, 65536 do
    local ok = sock:send(str_sub(data, i, i + 65535))
    if not ok then break end
  end
  ngx.sleep(0.05)
  return close_connection()
end

-- An ordinary 200 on a kept-alive connection; the next request that
-- arrives on the same connection is dropped without an answer (as a
-- server closing an idle connection just as it is reused).
local function f_drop_next(app)
  ngx_shared.state:set("drop:" .. ngx.var.connection, true, 60)
  return app.send_json(200, session_json())
end

--- Called first for every request: drop it if its connection was marked.
function _M.drop_marked()
  local key = "drop:" .. ngx.var.connection
  if ngx_shared.state:get(key) then
    ngx_shared.state:delete(key)
    return ngx.exit(444)
  end
end

-- 429 with a Retry-After of its own (?retry_after=S, default 1) the first
-- time ?key= is seen, then the session: concurrent callers each see
-- their own wait and their own body.
local function f_own_retry_after(app, args)
  local key = type(args.key) == "string" and args.key or "default"
  if ngx_shared.state:add("own:" .. key, true) then
    return app.send_error(429, nil, { ["Retry-After"] = tostring(int_arg(args, "retry_after", 1, 0, 86400)) })
  end
  return app.send_json(200, session_json())
end

-- A 400 whose body holds the request's Authorization header 210 levels
-- deep.
local function f_deep_token(app)
  local auth = ngx_req.get_headers(200).authorization or ""
  local json_string = store.json_string
  return app.send_json(400, '{"message":"bad","detail":' .. str_rep('{"inner":', 210) .. json_string(auth)
    .. str_rep("}", 210) .. "}")
end

-- A 401 whose message echoes the request's Authorization header, as some
-- gateways do.
local function f_echo_auth(app, args)
  local auth = tostring(ngx_req.get_headers(200).authorization or "")
  -- ?case=lower|upper: the key in another case, as a resolver's message
  -- or a Host header would print it
  local case = args.case
  if case == "lower" then auth = auth:lower() elseif case == "upper" then auth = auth:upper() end
  return app.send_error(401, "Invalid key: " .. auth)
end

-- A proxy's HTML 502 page that prints the request headers back.
local function f_echo_html(app)
  local lines = { "<html><body><h1>502 Bad Gateway</h1><pre>" }
  for k, v in pairs(ngx_req.get_headers(200)) do
    lines[#lines + 1] = k .. ": " .. (type(v) == "table" and table.concat(v, ", ") or v)
  end
  lines[#lines + 1] = "</pre></body></html>"
  return app.send(502, "text/html", table.concat(lines, "\n"))
end

-- An API error whose message carries control characters (CR, LF, ESC).
local function f_ctl_message(app)
  return app.send_json(500, '{"message":"line one\\r\\nFAKE: log line\\u001b[31m red \\u0085 nel \\u009b csi '
    .. '\\u2028 ls \\u202e rlo","error":"x","statusCode":500}')
end

local routes = {
  ["/fault/reset"] = f_reset,
  ["/fault/stall"] = f_stall,
  ["/fault/slow"] = f_slow,
  ["/fault/429"] = f_429,
  ["/fault/ratelimit"] = f_ratelimit,
  ["/fault/redirect"] = f_redirect,
  ["/fault/503-once"] = f_503_once,
  ["/fault/html502"] = f_html502,
  ["/fault/chunked-truncated"] = f_chunked_truncated,
  ["/fault/chunked-malformed"] = f_chunked_malformed,
  ["/fault/short-body"] = f_short_body,
  ["/fault/gzip"] = function(app) return compressed(app, "gzip") end,
  ["/fault/deflate"] = function(app) return compressed(app, "deflate") end,
  ["/fault/gzip-bomb"] = f_gzip_bomb,
  ["/fault/big"] = f_big,
  ["/fault/delay"] = f_delay,
  ["/fault/status"] = f_status,
  ["/fault/trickle"] = f_trickle,
  ["/fault/gzip-only"] = f_gzip_only,
  ["/fault/raw"] = f_raw,
  ["/fault/drop-next"] = f_drop_next,
  ["/fault/own-retry-after"] = f_own_retry_after,
  ["/fault/echo-auth"] = f_echo_auth,
  ["/fault/deep-token"] = f_deep_token,
  ["/fault/echo-html"] = f_echo_html,
  ["/fault/ctl-message"] = f_ctl_message,
  ["/fault/ok"] = function(app) return app.send_json(200, session_json()) end,
  ["/fault/tiny"] = f_tiny,
  ["/fault/bigstring"] = f_bigstring,
  ["/fault/redirect-loop"] = function(app)
    ngx.header["Location"] = "/fault/by-id/session/redirect-loop"
    return app.send(302, "text/plain", "again\n")
  end,
}

-- /fault/by-id/session/<id>: the id (one percent-encoded segment) names
-- the route and its arguments, "delay?ms=300" for /fault/delay?ms=300, and
-- the session served carries the id -- so session.get and get_many can
-- reach every fault route, with a body of their own per id.
local function by_id(path)
  local raw = path:match("^/fault/by%-id/session/([^/]+)$")
  if not raw then return nil end
  local id = ngx.unescape_uri(raw)
  local route, query = id:match("^([^?]*)%??(.*)$")
  ngx.ctx.by_id = id
  return "/fault/" .. route, ngx.decode_args(query or "", 100)
end

function _M.handle(app, method, path)
  local args
  local routed, routed_args = by_id(path)
  if routed then path, args = routed, routed_args end
  local f = routes[path]
  if not f then
    return app.send_error(404, "Cannot " .. method .. " " .. path)
  end
  args = args or ngx_req.get_uri_args()
  if type(args.key) == "string" then
    ngx_shared.state:incr("hits:" .. args.key, 1, 0)
  end
  return f(app, args)
end

return _M
