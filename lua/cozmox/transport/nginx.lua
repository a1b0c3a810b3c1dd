--- cozmox.transport.nginx: HTTP/1.1 over lua-nginx-module cosockets (see
--  cozmox.transport for the contract).
--
-- It yields instead of blocking the worker.  A request is small steps,
-- each its own function: open (pool, name, connect, proxy tunnel, TLS),
-- send, read_head (status line and headers, 1xx skipped), then one reader
-- per body framing (Content-Length, chunked, until close), the bytes
-- going to the response sink chunk by chunk; then keep-alive or close.
--
-- Every socket operation gets what is left of req.deadline, so neither a
-- server nor a resolver can stretch a call past its timeout (name
-- resolution, which nginx's socket timeouts do not bound, is raced
-- against the deadline).  IP literals and "localhost" never touch nginx's
-- resolver.  Connections are pooled per worker with setkeepalive, apart
-- for verified and unverified TLS and per proxy; a pooled connection the
-- server had closed before any byte of the response is replaced by a
-- fresh one, as curl does.  The reader is as strict as curl: a header
-- section over 300 KB, a status line without exactly three digits,
-- Content-Length values that disagree, a bad chunk size -- each is a
-- "network" failure, never a raised error.  gzip and deflate are asked
-- for and undone by the sink.
local core = require("cozmox.core")
local transport = require("cozmox.transport")

local type, tostring, tonumber, pairs, ipairs, setmetatable, pcall =
    type, tostring, tonumber, pairs, ipairs, setmetatable, pcall
local str_match, str_lower, str_find, str_sub, str_gsub, str_format, str_byte =
    string.match, string.lower, string.find, string.sub, string.gsub, string.format, string.byte
local concat, math_max, math_min, math_floor = table.concat, math.max, math.min, math.floor
local new_sink, now = core.sink, core.now
local failure, parse_url = transport.failure, transport.parse_url
local os_getenv = os.getenv

local _M = {}

local HEAD_MAX = 300 * 1024        -- curl refuses bigger header sections too
local LINE_MAX = 1024              -- a chunk-size or trailer line
local CHUNK = 65536
local POOL_SIZE, KEEPALIVE_MS = 32, 60000

local Nginx = {}
Nginx.__index = Nginx

local secrets = setmetatable({}, { __mode = "k" })

function _M.new(s, secret)
    local engine = ngx and ngx.config and ngx.config.ngx_lua_version
    local t = setmetatable({ s = s, user_agent = transport.user_agent(s,
        engine and str_format("ngx_lua/%d.%d.%d", math_floor(engine / 1000000), math_floor(engine / 1000) % 1000,
            engine % 1000)) }, Nginx)
    secrets[t] = secret
    return t
end

-- ------------------------------------------------------------ budget

-- Milliseconds left before the deadline, or nil when none are.
local function left_ms(deadline)
    local left = deadline - now()
    if left <= 0 then return nil end
    return math_max(1, math_floor(left * 1000))
end

-- A failure record of a socket error: kind and curl's code for it.
local function socket_failure(err, what, code, started)
    if err == "timeout" then
        return failure("timeout", what .. ": the timeout was reached", 28, started)
    end
    return failure("network", what .. ": " .. tostring(err), code, started)
end

-- ------------------------------------------------------------ proxy

-- Does host match the no_proxy list ("*", names matched at a label
-- boundary, exact addresses)?
local function no_proxy_matches(list, host)
    if not list or list == "" then return false end
    for item in list:gmatch("[^,%s]+") do
        item = str_lower(item)
        if item == "*" then return true end
        item = str_gsub(item, "^%.", "")
        if host == item or str_sub(host, -#item - 1) == "." .. item then return true end
    end
    return false
end

-- The proxy for scheme://host: the proxy option, else the environment
-- (http_proxy, https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY), unless
-- no_proxy/NO_PROXY lists the host.  Returns { host, port, auth } or nil,
-- or false, message for a proxy these sockets cannot use.
local function proxy_for(s, scheme, host)
    local url = s.proxy
    if not url then
        url = scheme == "http" and os_getenv("http_proxy")
            or scheme == "https" and (os_getenv("https_proxy") or os_getenv("HTTPS_PROXY"))
        url = url or os_getenv("all_proxy") or os_getenv("ALL_PROXY")
        if not url or url == "" then return nil end
    end
    if no_proxy_matches(os_getenv("no_proxy") or os_getenv("NO_PROXY"), host) then return nil end
    if not str_find(url, "://", 1, true) then url = "http://" .. url end
    local pscheme, userinfo, rest = str_match(url, "^(%a[%w+.-]*)://([^@/]*)@(.*)$")
    if not pscheme then
        pscheme, rest = str_match(url, "^(%a[%w+.-]*)://(.*)$")
    end
    if str_lower(pscheme or "") ~= "http" then
        return false, "only http:// proxies can be used over nginx cosockets"
    end
    local phost, pport = str_match(rest, "^%[([%x:.]+)%]:?(%d*)")
    if not phost then phost, pport = str_match(rest, "^([^:/]+):?(%d*)") end
    if not phost then return false, "the proxy URL has no host" end
    local auth
    if userinfo and userinfo ~= "" then
        auth = "Proxy-Authorization: Basic " .. ngx.encode_base64(ngx.unescape_uri(userinfo))
    end
    return { host = str_lower(phost), port = tonumber(pport) or 1080, auth = auth }
end

-- ------------------------------------------------------------ open

local function is_ip(host)
    return str_match(host, "^%d+%.%d+%.%d+%.%d+$") ~= nil or str_find(host, ":", 1, true) ~= nil
end

-- The address to connect to: IP literals as they are, localhost as
-- 127.0.0.1, names for nginx's resolver.
local function address(host)
    if host == "localhost" then return "127.0.0.1", false end
    return host, not is_ip(host)
end

-- connect, with name resolution bounded by the deadline: nginx's
-- resolver obeys only resolver_timeout, so a light thread connects while
-- this one waits at most what is left.
local function connect(sock, host, port, opts, deadline, needs_resolver)
    if not needs_resolver then return sock:connect(host, port, opts) end
    local worker = ngx.thread.spawn(function() return sock:connect(host, port, opts) end)
    local timer = ngx.thread.spawn(function()
        local ms = left_ms(deadline)
        if ms then ngx.sleep(ms / 1000) end
        return nil, "timeout"
    end)
    local ok, res, err = ngx.thread.wait(worker, timer)
    ngx.thread.kill(worker)
    ngx.thread.kill(timer)
    if not ok then return nil, tostring(res) end
    return res, err
end

-- A connect failure as a record: resolver trouble is told as such.
local function connect_failure(err, target)
    err = tostring(err)
    if str_find(err, "no resolver defined", 1, true) then
        return failure("config", str_format("cannot resolve %s: nginx has no resolver; add a 'resolver' line "
            .. "to nginx.conf (e.g. the nameserver of /etc/resolv.conf)", target), 6)
    end
    if str_find(err, "could not be resolved", 1, true) then
        return failure("network", "cannot resolve " .. target .. ": " .. err, 6)
    end
    if err == "timeout" then
        return failure("timeout", "connecting to " .. target .. ": the timeout was reached", 28)
    end
    return failure("network", "connecting to " .. target .. " failed: " .. err, 7)
end

-- Defined with the reading steps below.
local read_head, new_reader

-- CONNECT host:port through the proxy on sock.
local function tunnel(sock, host, port, proxy, deadline)
    local authority = (str_find(host, ":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. port
    local req = { "CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n" }
    if proxy.auth then req[#req + 1] = proxy.auth .. "\r\n" end
    req[#req + 1] = "\r\n"
    local ms = left_ms(deadline)
    if not ms then return failure("timeout", "proxy CONNECT: the timeout was reached", 28) end
    sock:settimeout(ms)
    local ok, err = sock:send(concat(req))
    if not ok then return socket_failure(err, "proxy CONNECT", 55) end
    local reader = new_reader(sock, deadline)
    local status, _, rec = read_head(reader)
    if not status then return rec end
    if reader.buf ~= "" then return failure("network", "proxy CONNECT: unexpected bytes after its answer", 56) end
    if status < 200 or status >= 300 then
        return failure("network", "proxy CONNECT to " .. authority .. " refused: HTTP " .. status, 56)
    end
    return nil
end

-- Open a connection for req: pooled if one is there, else connect
-- (through the proxy if any) and, for https, TLS with verification.
-- Returns sock, reused, timings, or nil, record.
function Nginx:open(scheme, host, port, deadline, connect_timeout)
    local s = self.s
    local proxy, perr = proxy_for(s, scheme, host)
    if proxy == false then return nil, failure("config", perr, 5) end
    local chost, cport = host, port
    if proxy then chost, cport = proxy.host, proxy.port end
    local addr, needs_resolver = address(chost)
    local pool = str_format("cozmox|%s://%s:%d|%s|%s", scheme, host, port, s.insecure and "insecure" or "verify",
        proxy and (proxy.host .. ":" .. proxy.port .. (proxy.auth and ("|" .. ngx.md5(proxy.auth)) or "")) or "direct")
    local ms = left_ms(deadline)
    if not ms then return nil, failure("timeout", "the timeout was reached before connecting", 28) end
    local sock = ngx.socket.tcp()
    sock:settimeouts(math_min(ms, math_floor(connect_timeout * 1000)), ms, ms)
    local t0 = now()
    local ok, err = connect(sock, addr, cport, { pool = pool, pool_size = POOL_SIZE }, math_min(deadline,
        t0 + connect_timeout), needs_resolver)
    if not ok then return nil, connect_failure(err, chost .. ":" .. cport) end
    local timings = { namelookup = 0, connect = now() - t0, tls = 0 }
    local reused = sock:getreusedtimes()
    if reused == 0 then
        if proxy and scheme == "https" then
            local rec = tunnel(sock, host, port, proxy, deadline)
            if rec then
                sock:close()
                return nil, rec
            end
        end
        if scheme == "https" then
            ms = left_ms(deadline)
            if not ms then
                sock:close()
                return nil, failure("timeout", "the timeout was reached before the TLS handshake", 28)
            end
            sock:settimeout(ms)
            local sess, serr = sock:sslhandshake(false, host, not s.insecure)
            if not sess then
                sock:close()
                if serr == "timeout" then
                    return nil, failure("timeout", "TLS handshake: the timeout was reached", 28)
                end
                local hint = is_ip(host) and not s.insecure
                    and " (lua-nginx-module matches host names only, not IP addresses: use a host name)" or ""
                return nil, failure("tls", "TLS handshake with " .. host .. " failed: " .. tostring(serr) .. hint, 60)
            end
            timings.tls = now() - t0
        end
    end
    return sock, reused, timings, proxy
end

-- ------------------------------------------------------------ send

function Nginx:request_text(req, scheme, host, port, target, proxy)
    local secret = secrets[self]
    local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    local hostport = (str_find(host, ":", 1, true) and ("[" .. host .. "]") or host)
        .. (default_port and "" or (":" .. port))
    local line_target = (proxy and scheme == "http") and (scheme .. "://" .. hostport .. target) or target
    local out = { req.method, " ", line_target, " HTTP/1.1\r\nHost: ", hostport,
        "\r\nAccept: application/json\r\nUser-Agent: ", self.user_agent,
        "\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n" }
    if secret and not req.no_auth then out[#out + 1] = secret.auth .. "\r\n" end
    if proxy and scheme == "http" and proxy.auth then out[#out + 1] = proxy.auth .. "\r\n" end
    for _, line in ipairs(req.headers or {}) do out[#out + 1] = line .. "\r\n" end
    local body = req.body
    if body then
        out[#out + 1] = "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n"
        out[#out + 1] = body
    elseif req.method ~= "GET" and req.method ~= "HEAD" then
        out[#out + 1] = "Content-Length: 0\r\n\r\n"
    else
        out[#out + 1] = "\r\n"
    end
    return concat(out)
end

-- ------------------------------------------------------------ reading

-- A socket reader that never waits past the deadline.  nginx's read
-- timeout restarts whenever a byte arrives, so a server trickling bytes
-- could hold any receive(n) for ever: every read here is receiveany,
-- which returns what has arrived, and the deadline is checked between
-- reads.  Bytes read past what a step needed stay buffered for the next.
local Reader = {}
Reader.__index = Reader

function new_reader(sock, deadline)
    return setmetatable({ sock = sock, deadline = deadline, buf = "", got = 0 }, Reader)
end

-- More bytes: data, or nil, err ("timeout" once the deadline has passed).
function Reader:more()
    local ms = left_ms(self.deadline)
    if not ms then return nil, "timeout" end
    self.sock:settimeout(ms)
    local data, err = self.sock:receiveany(CHUNK)
    if data then self.got = self.got + #data end
    return data, err
end

-- Up to n bytes (at least one), the buffer first.
function Reader:take(n)
    local buf = self.buf
    if buf ~= "" then
        if #buf <= n then
            self.buf = ""
            return buf
        end
        self.buf = str_sub(buf, n + 1)
        return str_sub(buf, 1, n)
    end
    local data, err = self:more()
    if not data then return nil, err end
    if #data > n then
        self.buf = str_sub(data, n + 1)
        return str_sub(data, 1, n)
    end
    return data
end

-- The end of a response head in s: the empty line that ends it, after a
-- CRLF or (as curl accepts) a bare LF.  Returns where the terminator
-- starts and ends, or nil.
local function head_end(s)
    local i = 1
    while true do
        local lf = str_find(s, "\n", i, true)
        if not lf then return nil end
        local b = str_byte(s, lf + 1)
        if b == 10 then return lf, lf + 1 end
        if b == 13 and str_byte(s, lf + 2) == 10 then return lf, lf + 2 end
        i = lf + 1
    end
end

-- One line: up to the next LF (a CR before it dropped).
local function line_end(s)
    return str_find(s, "\n", 1, true)
end

-- Bytes up to the terminator that ends(carry) -> start, stop finds (not
-- included), at most max of them; `keep` bytes of a round are carried
-- into the next in case a terminator straddles two reads.  Returns the
-- text, or nil, err ("too long" past max), partial (whether bytes came).
function Reader:until_end(ends, keep, max)
    local parts, size = {}, 0
    local carry = self.buf
    self.buf = ""
    while true do
        local at, stop = ends(carry)
        if at then
            parts[#parts + 1] = str_sub(carry, 1, at - 1)
            self.buf = str_sub(carry, stop + 1)
            return concat(parts)
        end
        if #carry > keep then
            parts[#parts + 1] = str_sub(carry, 1, #carry - keep)
            size = size + #carry - keep
            carry = str_sub(carry, #carry - keep + 1)
        end
        if size > max then return nil, "too long" end
        local data, err = self:more()
        if not data then
            self.buf = ""
            return nil, err, size + #carry > 0
        end
        carry = carry .. data
    end
end

-- A line of at most max bytes, without its CRLF or bare LF.
function Reader:line(max)
    local line, err, partial = self:until_end(line_end, 0, max)
    if line and str_byte(line, -1) == 13 then line = str_sub(line, 1, -2) end
    return line, err, partial
end

-- ------------------------------------------------------------ head

local NAME = "^([!#$%%&'*+.^_`|~%w-]+):()"
local LINE_LIMIT = 100 * 1024 -- curl refuses longer header lines too

-- s[from..] without the spaces and tabs at either end, in linear time
-- (a pattern like "^%s*(.-)%s*$" backtracks quadratically on a long run
-- of blanks, and Lua pattern matching never yields to the deadline).
local function trim(s, from)
    local i, j = from or 1, #s
    local b = str_byte(s, i)
    while b == 32 or b == 9 do
        i = i + 1
        b = str_byte(s, i)
    end
    b = str_byte(s, j)
    while j >= i and (b == 32 or b == 9) do
        j = j - 1
        b = str_byte(s, j)
    end
    return str_sub(s, i, j)
end

-- Header lines -> { [lower name] = value }, repeats joined with ", ", in
-- time linear in the section (a repeat collects parts, joined once).
-- Returns the table, or nil, what is wrong.
local function parse_headers(section)
    local h, last = {}, nil
    for line in section:gmatch("[^\r\n]+") do
        if #line > LINE_LIMIT then return nil, "response header line too long (over 100 KB)" end
        local c = str_byte(line, 1)
        if c == 32 or c == 9 then
            if not last then return nil, "malformed header line in the response" end
            local v = h[last]
            local folded = trim(line)
            if type(v) == "table" then v[#v] = v[#v] .. " " .. folded else h[last] = v .. " " .. folded end
        else
            local name, at = str_match(line, NAME)
            if not name then return nil, "malformed header line in the response" end
            local value = trim(line, at)
            name = str_lower(name)
            local old = h[name]
            if old == nil then h[name] = value
            elseif type(old) == "table" then old[#old + 1] = value
            else h[name] = { old, value } end
            last = name
        end
    end
    for k, v in pairs(h) do
        if type(v) == "table" then h[k] = concat(v, ", ") end
    end
    return h
end

-- Read one response head (status line + headers, 1xx skipped) within the
-- deadline.  Returns status, version, headers, or nil, nil, record.
read_head = function(reader)
    while true do
        local section, err, partial = reader:until_end(head_end, 2, HEAD_MAX)
        if not section then
            local started = partial or reader.got > 0
            if err == "too long" then
                return nil, nil, failure("network", "response header section larger than " .. HEAD_MAX .. " bytes",
                    56, true)
            end
            if err == "timeout" then
                return nil, nil, failure("timeout", "reading the response headers: the timeout was reached", 28,
                    started)
            end
            return nil, nil, failure("network", "reading the response headers: " .. tostring(err), 56, started)
        end
        local eol = str_find(section, "\n", 1, true) or (#section + 1)
        if eol > LINE_LIMIT then
            return nil, nil, failure("network", "response header line too long (over 100 KB)", 8, true)
        end
        local version, code, rest = str_match(str_sub(section, 1, eol - 1), "^HTTP/(1%.[01]) ([1-9]%d%d)(.*)$")
        if rest and str_byte(rest, -1) == 13 then rest = str_sub(rest, 1, -2) end
        if not version or (rest ~= "" and str_sub(rest, 1, 1) ~= " ") then
            return nil, nil, failure("network", "malformed status line in the response", 8, true)
        end
        local status = tonumber(code)
        local headers, why = parse_headers(str_sub(section, eol + 1))
        if not headers then return nil, nil, failure("network", why, 8, true) end
        if status >= 200 then return status, version, headers end
        -- 1xx: an interim response; the final one follows
    end
end

-- The body's length from its Content-Length header(s): nil when absent,
-- false when the values are not one non-negative integer.
local function content_length(value)
    if value == nil then return nil end
    local n, from = nil, 1
    while true do
        local comma = str_find(value, ",", from, true)
        local item = trim(str_sub(value, from, comma and comma - 1 or #value))
        if #item == 0 or #item > 15 or str_find(item, "[^%d]") then return false end
        local v = tonumber(item)
        if n and v ~= n then return false end
        n = v
        if not comma then return n end
        from = comma + 1
    end
end

-- ------------------------------------------------------------ body

-- The readers: each returns nil when the body was read whole, "stopped"
-- when the sink wanted no more, or a failure record.

local function body_failure(err, what, code)
    if err == "timeout" then return failure("timeout", "reading the body: the timeout was reached", 28, true) end
    return failure("network", what .. ": " .. tostring(err), code, true)
end

local function read_length(reader, sink, length)
    local left = length
    while left > 0 do
        local data, err = reader:take(math_min(left, CHUNK))
        if not data then return body_failure(err, "body shorter than its Content-Length", 18) end
        left = left - #data
        if not sink:feed(data) then return "stopped" end
    end
    return nil
end

local function read_chunked(reader, sink)
    while true do
        local line, err = reader:line(LINE_MAX)
        if not line then return body_failure(err, "broken chunked encoding", 56) end
        local hex = str_match(line, "^(%x+)[ \t]*;") or str_match(line, "^(%x+)[ \t]*$")
        if not hex or #hex > 12 then
            return failure("network", "broken chunked encoding: bad chunk size", 56, true)
        end
        local size = tonumber(hex, 16)
        if size == 0 then
            -- trailer lines, up to the empty one
            local total = 0
            while true do
                local trailer, terr = reader:line(LINE_MAX)
                if not trailer then return body_failure(terr, "broken chunked encoding", 56) end
                if trailer == "" then return nil end
                total = total + #trailer
                if total > HEAD_MAX then return failure("network", "chunked trailer section too large", 56, true) end
            end
        end
        local rec = read_length(reader, sink, size)
        if rec == "stopped" then return rec end
        if rec then
            if rec.code == 18 then rec.message, rec.code = "broken chunked encoding: the body ended early", 56 end
            return rec
        end
        local crlf, cerr = reader:line(2)
        if crlf ~= "" then
            return crlf and failure("network", "broken chunked encoding: no CRLF after a chunk", 56, true)
                or body_failure(cerr, "broken chunked encoding", 56)
        end
    end
end

local function read_until_close(reader, sink)
    while true do
        local data, err = reader:take(CHUNK)
        if not data then
            if err == "closed" then return nil end
            return body_failure(err, "reading the body", 56)
        end
        if not sink:feed(data) then return "stopped" end
    end
end

-- ------------------------------------------------------------ perform

-- One exchange on one connection.  Returns the record, and whether the
-- failure was a stale pooled connection (closed before any byte came).
function Nginx:exchange(req, want_meta)
    local s = self.s
    if s.ca_file or s.ca_path then
        return failure("config", "ca_file and ca_path do not apply to nginx cosockets: nginx's "
            .. "lua_ssl_trusted_certificate says which CAs to trust", 77)
    end
    local scheme, host, port, target = parse_url(req.url)
    if not scheme then return failure("config", "unsupported URL: only http:// and https:// are allowed", 1) end
    local t0 = now()
    local sock, reused, timings, proxy = self:open(scheme, host, port, req.deadline, req.connect_timeout)
    if not sock then return reused end
    local ms = left_ms(req.deadline)
    if not ms then
        sock:close()
        return failure("timeout", "the timeout was reached before sending", 28)
    end
    sock:settimeout(ms)
    local ok, serr = sock:send(self:request_text(req, scheme, host, port, target, proxy))
    if not ok then
        sock:close()
        if reused > 0 then return nil, true end
        if scheme == "https" and serr == "closed" and not s.insecure then
            -- lua-nginx-module can report a refused certificate as a
            -- finished handshake on a connection it then closes
            return failure("tls", "TLS connection to " .. host .. " closed right after the handshake "
                .. "(the certificate was refused; nginx's error log says why)", 60)
        end
        return socket_failure(serr, "sending the request", 55)
    end

    local reader = new_reader(sock, req.deadline)
    local status, version, headers = read_head(reader)
    if not status then
        sock:close()
        local rec = headers
        if reused > 0 and not rec.started and rec.kind == "network" then return nil, true end
        return rec
    end
    local t_first = now() - t0
    local rec = { status = status, headers = headers, code = 0, started = true }
    local sink = new_sink(s.max_response_bytes, s.max_depth, s.json_big_integers)
    sink:begin(status, headers["content-encoding"])

    local te = headers["transfer-encoding"]
    local length = content_length(headers["content-length"])
    local connection = str_lower(headers.connection or "")
    local keep = (version == "1.1" and not str_find(connection, "close", 1, true))
        or (version == "1.0" and str_find(connection, "keep-alive", 1, true) ~= nil)
    local outcome
    if req.method == "HEAD" or status == 204 or status == 304 then
        outcome = nil
    elseif te then
        keep = keep and length == nil
        if str_sub(str_lower(trim(te)), -7) == "chunked" then
            outcome = read_chunked(reader, sink)
        else
            keep = false
            outcome = read_until_close(reader, sink)
        end
    elseif length == false then
        outcome = failure("network", "invalid or conflicting Content-Length headers", 8, true)
    elseif length then
        outcome = read_length(reader, sink, length)
    else
        keep = false
        outcome = read_until_close(reader, sink)
    end

    if outcome == nil and keep and reader.buf == "" then
        sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE)
    else
        sock:close()
    end
    if type(outcome) == "table" then
        rec.kind, rec.message, rec.code = outcome.kind, outcome.message, outcome.code
    end
    sink:finish(rec, type(outcome) == "table")
    if want_meta then
        local total = now() - t0
        rec.meta = { status = status, headers = headers, http_version = version, bytes = rec.bytes,
            primary_ip = proxy and proxy.host or address(host), redirects = 0,
            timings = { namelookup = timings.namelookup, connect = timings.connect, tls = timings.tls,
                first_byte = t_first, total = total } }
    end
    return rec
end

-- A stale pooled connection is dropped and the exchange starts again on
-- the next one, at most once per connection the pool can hold (the last
-- try is then a new connection).
function Nginx:perform(req, want_meta)
    if self.closed then return transport.closed() end
    for _ = 1, POOL_SIZE + 1 do
        local rec, stale = self:exchange(req, want_meta)
        if not stale then return rec end
    end
    return failure("network", "the server closed every pooled connection before answering", 56)
end

-- Concurrent requests with light threads, at most `concurrency` at once.
function Nginx:perform_many(reqs, concurrency, want_meta)
    local out, nexti, n = {}, 1, #reqs
    local function worker()
        while nexti <= n do
            local i = nexti
            nexti = nexti + 1
            local ok, rec = pcall(self.perform, self, reqs[i], want_meta)
            out[i] = ok and rec or failure("network", "request failed: " .. tostring(rec), 0)
        end
    end
    local threads = {}
    for k = 1, math_min(concurrency, n) do threads[k] = ngx.thread.spawn(worker) end
    for _, th in ipairs(threads) do ngx.thread.wait(th) end
    return out
end

function Nginx:close()
    self.closed = true
end

return _M
