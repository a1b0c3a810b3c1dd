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

local function session_json()
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

local function f_delay(app, args)
  ngx.sleep(int_arg(args, "ms", 0, 0, 600000) / 1000)
  return app.send_json(200, session_json())
end

local function f_status(app, args)
  local code = int_arg(args, "code", 500, 200, 599)
  if recovered(args, "status:" .. code .. ":") then return app.send_json(200, session_json()) end
  return app.send_error(code)
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
}

function _M.handle(app, method, path)
  local f = routes[path]
  if not f then
    return app.send_error(404, "Cannot " .. method .. " " .. path)
  end
  local args = ngx_req.get_uri_args()
  if type(args.key) == "string" then
    ngx_shared.state:incr("hits:" .. args.key, 1, 0)
  end
  return f(app, args)
end

return _M
