--- cozmox.transport: the layers a client sends requests through.
--
-- Every transport has the C handle's interface, so the client never knows
-- which one runs:
--
--   t:perform(method, url, body, header_lines)
--       -> status, value                                  (decoded body)
--       -> status, nil, kind, message, curl_code, snippet (body problem)
--       -> nil, nil, kind, message, curl_code, started    (no response)
--   t:header(name) -> value of a header of the last response, or nil
--   t:meta()       -> { status, headers, http_version, timings, ... }
--   t:perform_many(urls, concurrency, want_meta) -> { {status=, value=, ...}, ... }
--   t:close()
--
-- "curl" is the C core's libcurl handle (blocking).  "nginx" speaks
-- HTTP/1.1 over lua-nginx-module cosockets: it yields instead of blocking
-- the worker, pools connections with setkeepalive, verifies TLS with
-- sslhandshake (trust comes from nginx's lua_ssl_trusted_certificate) and
-- feeds the body to the same C push decoder chunk by chunk.  A function
-- can be given instead (see custom()): it receives a request table and
-- returns status, headers and the body or a chunk reader.
local core = require("cozmox.core")

local type, tostring, tonumber, pairs, ipairs, setmetatable, pcall =
    type, tostring, tonumber, pairs, ipairs, setmetatable, pcall
local str_match, str_lower, str_find, str_sub, str_format =
    string.match, string.lower, string.find, string.sub, string.format
local concat = table.concat
local new_decoder = core.decoder

local _M = {}

local SNIPPET_MAX = 512
local CHUNK = 16384

-- Phases of lua-nginx-module in which cosockets (and ngx.sleep) work.
local YIELDABLE = { rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }

--- Is this running inside nginx, in a phase where cosockets can be used?
function _M.nginx_can_yield()
    if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then return false end
    return YIELDABLE[ngx.get_phase()] == true
end

--- Is this running inside nginx at all?
function _M.in_nginx()
    return type(ngx) == "table" and type(ngx.socket) == "table" and type(ngx.get_phase) == "function"
end

-- ------------------------------------------------------------ decoding

-- Feeds body chunks to a fresh C push decoder, keeps a printable snippet
-- for error pages and enforces max_response_bytes.
local Sink = {}
Sink.__index = Sink

local function new_sink(limits, status)
    return setmetatable({ dec = new_decoder({ max_depth = limits.max_depth, big_integers = limits.big_integers }), received = 0,
        snippet = {}, snip_len = 0, status = status, max_bytes = limits.max_response_bytes }, Sink)
end

-- Returns true to go on, or false, kind, message to stop the transfer.
function Sink:feed(chunk)
    local n = #chunk
    if n == 0 then return true end
    if self.received + n > self.max_bytes then
        return false, "too_large", str_format("response body larger than max_response_bytes (%d bytes)", self.max_bytes)
    end
    self.received = self.received + n
    if self.snip_len < SNIPPET_MAX then
        local piece = str_sub(chunk, 1, SNIPPET_MAX - self.snip_len)
        self.snippet[#self.snippet + 1] = piece
        self.snip_len = self.snip_len + #piece
    end
    if self.failed then return self.snip_len < SNIPPET_MAX end
    local ok, err = self.dec:feed(chunk)
    if not ok then
        self.failed = err:gsub("^cozmox%.json: ", "")
        if self.status >= 200 and self.status < 300 then return false, "decode", self.failed end
        return self.snip_len < SNIPPET_MAX
    end
    return true
end

-- The perform outcome once the body is complete (or cut by kind).
function Sink:outcome(kind, message)
    local snippet = concat(self.snippet)
    if kind then return self.status, nil, kind, message, 0, snippet end
    if self.failed then return self.status, nil, "decode", self.failed, 0, snippet end
    if self.received == 0 then return self.status, nil end
    local v, err = self.dec:finish()
    if v == nil then return self.status, nil, "decode", (err:gsub("^cozmox%.json: ", "")), 0, snippet end
    return self.status, v
end

-- ------------------------------------------------------------ URLs, headers

local function parse_url(url)
    local scheme, host, port, path = str_match(url, "^(https?)://([^/:?#]+):?(%d*)([^#]*)$")
    if not scheme then
        local s6, h6, p6, path6 = str_match(url, "^(https?)://%[([^%]]+)%]:?(%d*)([^#]*)$")
        scheme, host, port, path = s6, h6, p6, path6
    end
    if not scheme then return nil end
    if path == "" then path = "/" end
    return scheme, host, tonumber(port) or (scheme == "https" and 443 or 80), path
end
_M.parse_url = parse_url

-- header lines "Name: value" -> name (lower) -> value, repeats joined.
local function add_header(headers, name, value)
    name = str_lower(name)
    local old = headers[name]
    headers[name] = old and (old .. ", " .. value) or value
end

-- One perform_many outcome (the table multi.c builds for curl) from a
-- Lua transport t and its perform values.
local function record(t, want_meta, status, value, kind, message, code, extra)
    local o = { status = status, value = value, kind = kind, message = message, curl_code = code,
        retry_after = t._headers["retry-after"], ratelimit_reset = t._headers["x-ratelimit-reset"] }
    if status == nil then o.started = extra else o.snippet = extra end
    if want_meta and status then o.meta = t._meta end
    return o
end

-- ------------------------------------------------------------ nginx

local Nginx = {}
Nginx.__index = Nginx

-- Authorization lines of the cosocket transports, out of sight of
-- pairs()/inspect on the client (the curl handle keeps its own in C).
local secrets = setmetatable({}, { __mode = "k" })

--- A cosocket transport.  s: the client's settings; auth: the
--  Authorization header line (kept in this closure-held object only).
function _M.nginx(s, auth)
    local t = setmetatable({
        limits = { max_depth = s.max_depth or 1000, max_response_bytes = s.max_response_bytes or 64 * 1024 * 1024,
            big_integers = s.json_big_integers },
        timeout = (s.timeout or 60) * 1000, connect_timeout = (s.connect_timeout or 10) * 1000,
        user_agent = s.user_agent, insecure = s.insecure, follow_redirects = s.follow_redirects,
        pool_size = 32, keepalive_ms = 60000, _headers = {}, _meta = nil,
    }, Nginx)
    secrets[t] = auth
    return t
end

local function nginx_fail(kind, message, started)
    return nil, nil, kind, message, 0, started or false
end

-- Read exactly n bytes or a line, within the deadline.
local function receive(sock, deadline, pattern)
    local left = deadline - ngx.now()
    if left <= 0 then return nil, "timeout" end
    sock:settimeout(math.max(1, math.floor(left * 1000)))
    return sock:receive(pattern)
end

function Nginx:perform(method, url, body, header_lines)
    local scheme, host, port, path = parse_url(url)
    if not scheme then return nginx_fail("config", "unsupported URL: only http:// and https:// are allowed") end
    local t0 = ngx.now()
    ngx.update_time()
    t0 = ngx.now()
    local deadline = t0 + self.timeout / 1000
    local sock = ngx.socket.tcp()
    sock:settimeouts(self.connect_timeout, self.timeout, self.timeout)
    -- Connections verified and unverified never share a pool.
    local pool = scheme .. "://" .. host .. ":" .. port .. (self.insecure and "#insecure" or "")
    local ok, err = sock:connect(host, port, { pool = pool, pool_size = self.pool_size })
    if not ok then
        return nginx_fail(err == "timeout" and "timeout" or "network", "connect to " .. host .. ":" .. port .. " failed: " .. tostring(err))
    end
    ngx.update_time()
    local t_connect = ngx.now()
    if scheme == "https" and sock:getreusedtimes() == 0 then
        local sess, serr = sock:sslhandshake(false, host, not self.insecure)
        if not sess then
            sock:close()
            return nginx_fail(serr == "timeout" and "timeout" or "tls", "TLS handshake with " .. host .. " failed: " .. tostring(serr))
        end
    end
    ngx.update_time()
    local t_tls = ngx.now()
    local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    local req = { method, " ", path, " HTTP/1.1\r\nHost: ", host, default_port and "" or (":" .. port),
        "\r\nAccept: application/json\r\nUser-Agent: ", self.user_agent or "cozmox-lua",
        "\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n" }
    local auth = secrets[self._root or self]
    if auth then req[#req + 1] = auth .. "\r\n" end
    if header_lines then
        for _, line in ipairs(header_lines) do req[#req + 1] = line .. "\r\n" end
    end
    if body then
        req[#req + 1] = "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n"
        req[#req + 1] = body
    elseif method ~= "GET" and method ~= "HEAD" then
        req[#req + 1] = "Content-Length: 0\r\n\r\n"
    else
        req[#req + 1] = "\r\n"
    end
    local sent, serr = sock:send(concat(req))
    if not sent then
        sock:close()
        return nginx_fail(serr == "timeout" and "timeout" or "network", "send failed: " .. tostring(serr))
    end

    -- status line (skipping 1xx) and headers
    local status, version, headers
    repeat
        local line, rerr = receive(sock, deadline, "*l")
        if not line then
            sock:close()
            return nginx_fail(rerr == "timeout" and "timeout" or "network", "reading the status line failed: " .. tostring(rerr))
        end
        version, status = str_match(line, "^HTTP/(%d%.%d) (%d%d%d)")
        if not status then
            sock:close()
            return nginx_fail("network", "malformed status line", true)
        end
        status = tonumber(status)
        headers = {}
        while true do
            local h, herr = receive(sock, deadline, "*l")
            if not h then
                sock:close()
                return nginx_fail(herr == "timeout" and "timeout" or "network", "reading headers failed: " .. tostring(herr), true)
            end
            if h == "" then break end
            local name, value = str_match(h, "^([^:]+):%s*(.-)%s*$")
            if name then add_header(headers, name, value) end
        end
    until status >= 200
    ngx.update_time()
    local t_first = ngx.now()
    self._headers = headers

    local sink = new_sink(self.limits, status)
    local kind, message, stopped
    local keep = headers.connection == nil or str_lower(headers.connection) ~= "close"
    local te = headers["transfer-encoding"]
    local length = tonumber(headers["content-length"] or "")
    if method == "HEAD" or status == 204 or status == 304 then
        -- no body
    elseif te and str_find(str_lower(te), "chunked", 1, true) then
        while true do
            local size_line, cerr = receive(sock, deadline, "*l")
            if not size_line then kind, message = (cerr == "timeout" and "timeout" or "network"), "broken chunked encoding: " .. tostring(cerr) break end
            local size = tonumber(str_match(size_line, "^%s*(%x+)"), 16)
            if not size then kind, message = "network", "broken chunked encoding: bad chunk size" break end
            if size == 0 then
                repeat local trailer = receive(sock, deadline, "*l") until not trailer or trailer == ""
                break
            end
            while size > 0 do
                local data, derr = receive(sock, deadline, math.min(size, CHUNK))
                if not data then kind, message = (derr == "timeout" and "timeout" or "network"), "broken chunked encoding: " .. tostring(derr) break end
                size = size - #data
                local go, k, m = sink:feed(data)
                if not go then kind, message, stopped = k, m, true break end
            end
            if kind or stopped then break end
            local crlf = receive(sock, deadline, 2)
            if crlf ~= "\r\n" then kind, message = "network", "broken chunked encoding: missing CRLF" break end
        end
    elseif length then
        local left = length
        while left > 0 do
            local data, derr, partial = receive(sock, deadline, math.min(left, CHUNK))
            if not data then
                if partial and #partial > 0 then sink:feed(partial) end
                kind, message = (derr == "timeout" and "timeout" or "network"),
                    "body shorter than its Content-Length: " .. tostring(derr)
                break
            end
            left = left - #data
            local go, k, m = sink:feed(data)
            if not go then kind, message, stopped = k, m, true break end
        end
    else
        keep = false
        while true do
            local data, derr, partial = receive(sock, deadline, CHUNK)
            local piece = data or partial
            if piece and #piece > 0 then
                local go, k, m = sink:feed(piece)
                if not go then kind, message = k, m break end
            end
            if not data then
                if derr ~= "closed" then kind, message = (derr == "timeout" and "timeout" or "network"), tostring(derr) end
                break
            end
        end
    end
    ngx.update_time()
    local t_end = ngx.now()
    self._meta = { status = status, headers = headers, http_version = version, bytes = sink.received,
        primary_ip = host, redirects = 0, timings = { namelookup = 0, connect = t_connect - t0,
        tls = scheme == "https" and (t_tls - t0) or 0, first_byte = t_first - t0, total = t_end - t0 } }
    if kind == "network" or kind == "timeout" then
        sock:close()
        return nil, nil, kind, message, 0, true
    end
    if kind or stopped or not keep then sock:close() else sock:setkeepalive(self.keepalive_ms, self.pool_size) end
    return sink:outcome(kind, message)
end

function Nginx:header(name)
    return self._headers[str_lower(name)]
end

function Nginx:meta()
    return self._meta
end

-- Concurrent GETs with light threads, each on its own transport copy.
function Nginx:perform_many(urls, concurrency, want_meta)
    local out, nexti = {}, 1
    local function worker()
        local t = setmetatable({ _headers = {}, _root = self }, { __index = self })
        while nexti <= #urls do
            local i = nexti
            nexti = nexti + 1
            out[i] = record(t, want_meta, t:perform("GET", urls[i]))
        end
    end
    local threads = {}
    for k = 1, math.min(concurrency, #urls) do threads[k] = ngx.thread.spawn(worker) end
    for _, th in ipairs(threads) do ngx.thread.wait(th) end
    return out
end

function Nginx:close() end

-- ------------------------------------------------------------ custom

--- A transport around a user function fn(req) -> status, headers, body,
--  where req = { method =, url =, headers = { name = value }, body =,
--  timeout =, connect_timeout = } and body is a string or a function
--  returning the next chunk (nil at the end).  fn may also return nil, err
--  (a message; kind "network").  Raising inside fn is the caller's error.
function _M.custom(fn, s, auth)
    local limits = { max_depth = s.max_depth or 1000, max_response_bytes = s.max_response_bytes or 64 * 1024 * 1024,
        big_integers = s.json_big_integers }
    local t = { _headers = {} }
    function t.perform(self, method, url, body, header_lines)
        local headers = { ["Accept"] = "application/json", ["User-Agent"] = s.user_agent }
        if auth then headers["Authorization"] = auth:match("^Authorization: (.*)$") end
        if body then headers["Content-Type"] = "application/json" end
        for _, line in ipairs(header_lines or {}) do
            local n, v = str_match(line, "^([^:]+): (.*)$")
            headers[n] = v
        end
        local status, rheaders, rbody = fn({ method = method, url = url, headers = headers, body = body,
            timeout = s.timeout or 60, connect_timeout = s.connect_timeout or 10 })
        if type(status) ~= "number" then
            return nil, nil, "network", tostring(rheaders or "transport function failed"), 0, false
        end
        local h = {}
        for k, v in pairs(rheaders or {}) do add_header(h, tostring(k), tostring(v)) end
        self._headers = h
        self._meta = { status = status, headers = h, http_version = "", bytes = 0, primary_ip = "",
            redirects = 0, timings = { namelookup = 0, connect = 0, tls = 0, first_byte = 0, total = 0 } }
        local sink = new_sink(limits, status)
        if type(rbody) == "string" then
            local go, k, m = sink:feed(rbody)
            if not go then return sink:outcome(k, m) end
        elseif type(rbody) == "function" then
            while true do
                local chunk, err = rbody()
                if chunk == nil then
                    if err then return nil, nil, "network", tostring(err), 0, true end
                    break
                end
                local go, k, m = sink:feed(chunk)
                if not go then return sink:outcome(k, m) end
            end
        end
        self._meta.bytes = sink.received
        return sink:outcome()
    end
    function t.header(self, name) return self._headers[str_lower(name)] end
    function t.meta(self) return self._meta end
    function t.perform_many(self, urls, _, want_meta)
        local out = {}
        for i, url in ipairs(urls) do
            out[i] = record(self, want_meta, self:perform("GET", url))
        end
        return out
    end
    function t.close() end
    return t
end

return _M
