--- cozmox.transport: the contract every transport keeps, and what they share.
--
-- A transport moves one HTTP request and pours the response body into a
-- response sink (the C core's core.sink: content decoding, the size limit,
-- the snippet, the decoder -- the body rules live there, once).  It knows
-- nothing of retries, redirects, errors or the API: the client reads the
-- result record and decides.
--
-- Made once per client:  t = require("cozmox.transport.<name>").new(s, secret)
--   s       the client's settings (cozmox.options.resolve): limits, TLS,
--           proxy, user_agent -- every value already resolved
--   secret  { auth = "Authorization: Bearer ..." } or nil; never printed
--
--   rec  = t:perform(req, want_meta)
--   recs = t:perform_many(reqs, concurrency, want_meta)   records indexed like reqs
--   t:close()                 idempotent; afterwards perform gives records of
--                             kind "closed" (a transport never reopens)
--
-- The request record (built by the client):
--   method           "GET", "POST", ...
--   url              absolute http:// or https:// URL
--   headers          array of extra "Name: value" lines, or nil
--   body             string or nil (sent as application/json)
--   no_auth          true: do not send Authorization (a redirect to
--                    another origin)
--   timeout          seconds this attempt may take, everything included
--   deadline         the same as a core.now() instant
--   connect_timeout  seconds for name resolution + connect (<= timeout)
--
-- The result record (the same fields from every transport):
--   status    HTTP status of the response, or nil when none arrived
--   value     the decoded JSON body (nil when empty or on a failure)
--   kind      nil on success (any status); else "network", "timeout",
--             "tls", "config", "decode", "too_large", "memory" or "closed"
--   message   what went wrong, when kind is set
--   code      curl's CURLcode, or the code curl would have given
--             (6 resolve, 7 connect, 28 timeout, 35/60 TLS, 55 send,
--             56 receive, 18 short body, 8 bad response, 1 scheme)
--   started   whether any byte of a response arrived
--   snippet   first bytes of a body that did not decode
--   headers   { [lower-case name] = value } of the response (repeats
--             joined with ", ")
--   bytes     decoded body bytes
--   meta      when want_meta: { status, http_version, headers, timings =
--             { namelookup, connect, tls, first_byte, total }, bytes,
--             primary_ip, redirects }
--
-- A transport never raises for a failure of the network or the server;
-- it raises only for programmer errors (a malformed request record).
local type, tonumber, ipairs = type, tonumber, ipairs
local str_match, str_lower, str_find, str_sub = string.match, string.lower, string.find, string.sub

local _M = {}

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

-- ------------------------------------------------------------ URLs

--- scheme, host, port, target ("/path?query") of an http(s) URL, or nil.
--  host is lower-case; an IPv6 literal comes without its brackets.
function _M.parse_url(url)
    local scheme, authority, target = str_match(url, "^([%a][%w+.-]*)://([^/?#]*)([^#]*)")
    if not scheme then return nil end
    scheme = str_lower(scheme)
    if scheme ~= "http" and scheme ~= "https" then return nil end
    if str_find(authority, "@", 1, true) then return nil end
    local host, port = str_match(authority, "^%[([%x:.]+)%]:?(%d*)$")
    if not host then host, port = str_match(authority, "^([^:]+):?(%d*)$") end
    if not host or host == "" then return nil end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    if port < 1 or port > 65535 then return nil end
    if target == "" then target = "/" end
    if str_sub(target, 1, 1) == "?" then target = "/" .. target end
    return scheme, str_lower(host), port, target
end

--- The URL a Location header points to, from the URL it came with
--  (RFC 3986 reference resolution, for the forms servers send).
function _M.resolve_location(base, location)
    if str_match(location, "^[%a][%w+.-]*:") then return location end
    local scheme, authority, path = str_match(base, "^([%a][%w+.-]*)://([^/?#]*)([^?#]*)")
    if not scheme then return nil end
    if str_sub(location, 1, 2) == "//" then return scheme .. ":" .. location end
    if str_sub(location, 1, 1) == "/" then return scheme .. "://" .. authority .. location end
    if str_sub(location, 1, 1) == "?" then
        return scheme .. "://" .. authority .. (path ~= "" and path or "/") .. location
    end
    local dir = str_match(path, "^(.*/)") or "/"
    local query_at = str_find(location, "[?]")
    local rel, query = location, ""
    if query_at then rel, query = str_sub(location, 1, query_at - 1), str_sub(location, query_at) end
    -- the merged path without its "." and ".." segments
    local parts, out = {}, {}
    for seg in (dir .. rel .. "/"):gmatch("(.-)/") do parts[#parts + 1] = seg end
    for i, seg in ipairs(parts) do
        if seg == "." or seg == ".." then
            if seg == ".." and #out > 1 then out[#out] = nil end
            if i == #parts then out[#out + 1] = "" end
        else
            out[#out + 1] = seg
        end
    end
    if rel == "" then out[#out] = nil end
    return scheme .. "://" .. authority .. table.concat(out, "/") .. query
end

local LOCATION_MAX = 8192

--- A Location header fit to follow: at most 8 KB, no spaces or control
--  characters (two Location headers, joined with ", ", have one), bytes
--  beyond ASCII percent-encoded.  Returns it, or nil.
function _M.clean_location(location)
    if type(location) ~= "string" or #location == 0 or #location > LOCATION_MAX
        or str_find(location, "[%z\1-\32\127]") then
        return nil
    end
    return (location:gsub("[\128-\255]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- Do two URLs have the same origin (scheme, host and port)?
function _M.same_origin(a, b)
    local s1, h1, p1 = _M.parse_url(a)
    local s2, h2, p2 = _M.parse_url(b)
    return s1 ~= nil and s1 == s2 and h1 == h2 and p1 == p2
end

-- ------------------------------------------------------------ shared

--- The User-Agent a transport sends: the caller's product token, ours,
--  the engine (e.g. "libcurl/7.88.1", or nil) and the Lua runtime.
function _M.user_agent(s, engine)
    return s.ua_product .. (engine and (" " .. engine) or "") .. " " .. s.ua_runtime
end

--- perform_many for a transport without one of its own: one at a time.
function _M.perform_each(t, reqs, _, want_meta)
    local out = {}
    for i, req in ipairs(reqs) do out[i] = t:perform(req, want_meta) end
    return out
end

--- A record for a failure before any response (code: curl's CURLcode).
function _M.failure(kind, message, code, started)
    return { kind = kind, message = message, code = code, started = started or false, bytes = 0 }
end

--- The record of a request made on a closed transport.
function _M.closed()
    return _M.failure("closed", "the client was closed during the call", 0, false)
end

--- "Name: value" lines -> name, value (for transports that take tables).
function _M.split_header(line)
    return str_match(line, "^([^:]+):%s*(.*)$")
end

--- The value of a "Name: value" line list, or nil (case-insensitive).
function _M.header_value(lines, name)
    name = str_lower(name)
    for _, line in ipairs(lines or {}) do
        local n, v = _M.split_header(line)
        if n and str_lower(n) == name then return v end
    end
    return nil
end

return _M
