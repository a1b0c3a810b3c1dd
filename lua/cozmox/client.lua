--- cozmox.client: a configured connection to the API.
--
-- A client owns one libcurl handle (keep-alive between calls), released
-- by client:close(), by `<close>` on Lua 5.4, or by the garbage collector.
-- The token is handed to the C core once, as a header, and is kept nowhere
-- on the Lua side: it cannot leak through tostring, errors or traces.
local core = require("cozmox.core")
local errors = require("cozmox.errors")
local session = require("cozmox.session")
local retry = require("cozmox.retry")
local transport = require("cozmox.transport")

local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local setmetatable, getmetatable = setmetatable, getmetatable
local str_format, str_find, str_match, str_gsub = string.format, string.find, string.match, string.gsub
local os_getenv, math_floor = os.getenv, math.floor
local new_handle, escape_segment, encode = core.new_handle, core.escape_segment, core.encode
local new_error, http_error = errors.new, errors.http
local io_stderr = io.stderr
local RETRY_STATUS, IDEMPOTENT, retry_delay = retry.STATUS, retry.IDEMPOTENT, retry.delay

local _M = {}

_M.VERSION = "0.1.0"
_M.DEFAULT_BASE_URL = "https://api.cozmox.ai"
_M.USER_AGENT = str_format("cozmox-lua/%s libcurl/%s %s", _M.VERSION, core.curl_version,
    (type(jit) == "table" and jit.version) or _VERSION)

local NO_TOKEN = "no API token: set the COZMOX_TOKEN environment variable "
    .. "or pass one with cozmox.new({ token = ... })"

-- option name -> expected Lua type
local OPTIONS = {
    token = "string", base_url = "string", timeout = "number", connect_timeout = "number",
    max_response_bytes = "number", max_depth = "number", ca_file = "string", ca_path = "string",
    user_agent = "string", max_retries = "number", max_retry_wait = "number", sleep = "function",
    insecure = "boolean", proxy = "string", follow_redirects = "boolean", debug = "boolean",
    on_response = "function", transport = "string|function", json_big_integers = "string",
}

-- Said once per Lua state, the first time a client disables verification.
local insecure_warned = false

local function bad_option(name, msg, level)
    error(str_format("bad argument #1 to 'new' (option '%s' %s)", name, msg), level + 1)
end

local function has_ctl(s)
    return str_find(s, "[%z\r\n]") ~= nil
end

local function check_positive(opts, name, integer, max)
    local v = opts[name]
    if v == nil then return end
    if v ~= v or v <= 0 or (max and v > max) or (integer and math_floor(v) ~= v) then
        bad_option(name, integer and "must be a positive integer" .. (max and (" up to " .. max) or "")
            or "must be a positive number", 4)
    end
end

--- Validate opts (raising "bad argument" naming the option) and return
--  the settings the client needs.
local function settings(opts)
    if opts == nil then opts = {} end
    if type(opts) ~= "table" then
        error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", 3)
    end
    for k, v in pairs(opts) do
        local want = OPTIONS[k]
        if want == nil then
            error(str_format("bad argument #1 to 'new' (unknown option '%s')", tostring(k)), 3)
        end
        if type(v) ~= want and not (want == "string|function" and (type(v) == "string" or type(v) == "function")) then
            bad_option(k, str_format("must be a %s, got %s", (str_gsub(want, "|", " or ")), type(v)), 2)
        end
    end
    local token = opts.token
    if token == nil then token = os_getenv("COZMOX_TOKEN") end
    if token == "" then token = nil end
    if token ~= nil and has_ctl(token) then bad_option("token", "must not contain CR, LF or NUL", 2) end

    local base_url, from_env = opts.base_url, false
    if base_url == nil then
        base_url = os_getenv("COZMOX_BASE_URL")
        from_env = base_url ~= nil and base_url ~= ""
        if not from_env then base_url = _M.DEFAULT_BASE_URL end
    end
    if not str_match(base_url, "^[Hh][Tt][Tt][Pp][Ss]?://[^/%s]+") or str_find(base_url, "[%s%z]") then
        if from_env then
            error("cozmox: COZMOX_BASE_URL must be an http:// or https:// URL", 3)
        end
        bad_option("base_url", "must be an http:// or https:// URL", 2)
    end
    base_url = str_gsub(base_url, "/+$", "")

    local max_retries = opts.max_retries
    if max_retries ~= nil and (max_retries < 0 or max_retries > 100 or math_floor(max_retries) ~= max_retries) then
        bad_option("max_retries", "must be an integer between 0 and 100", 2)
    end
    local max_retry_wait = opts.max_retry_wait
    if max_retry_wait ~= nil and not (max_retry_wait >= 0 and max_retry_wait <= 86400) then
        bad_option("max_retry_wait", "must be a number of seconds between 0 and 86400", 2)
    end
    if opts.proxy ~= nil and (has_ctl(opts.proxy) or opts.proxy == "") then
        bad_option("proxy", "must be a non-empty URL without CR, LF or NUL", 2)
    end
    local big = opts.json_big_integers
    if big ~= nil and big ~= "number" and big ~= "string" then
        bad_option("json_big_integers", "must be \"number\" or \"string\"", 2)
    end
    local tr = opts.transport
    if type(tr) == "string" and tr ~= "auto" and tr ~= "curl" and tr ~= "nginx" then
        bad_option("transport", "must be \"auto\", \"curl\", \"nginx\" or a function", 2)
    end
    local debug_trace = opts.debug
    if debug_trace == nil then
        local env = os_getenv("COZMOX_DEBUG")
        debug_trace = env ~= nil and env ~= "" and env ~= "0"
    end
    check_positive(opts, "timeout")
    check_positive(opts, "connect_timeout")
    check_positive(opts, "max_response_bytes", true)
    check_positive(opts, "max_depth", true, 1000000)
    if opts.user_agent and has_ctl(opts.user_agent) then
        bad_option("user_agent", "must not contain CR, LF or NUL", 2)
    end
    return {
        token = token,
        base_url = base_url,
        user_agent = opts.user_agent and (opts.user_agent .. " " .. _M.USER_AGENT) or _M.USER_AGENT,
        timeout = opts.timeout, connect_timeout = opts.connect_timeout,
        max_response_bytes = opts.max_response_bytes, max_depth = opts.max_depth,
        ca_file = opts.ca_file, ca_path = opts.ca_path, proxy = opts.proxy,
        insecure = opts.insecure == true, follow_redirects = opts.follow_redirects == true,
        max_retries = max_retries or 2, max_retry_wait = max_retry_wait or 60,
        sleep = opts.sleep, debug = debug_trace, on_response = opts.on_response,
        transport = tr or "auto", json_big_integers = big,
    }
end

-- The sleep used between retries: ngx.sleep inside nginx where it can
-- yield (it does not block the worker), else the C core's nanosleep.
local nginx_can_yield = transport.nginx_can_yield
local function default_sleep(seconds)
    if nginx_can_yield() then return ngx.sleep(seconds) end
    return core.sleep(seconds)
end

local Client = {}
Client.__index = Client
Client.__name = "cozmox.client"

function Client.__tostring(c)
    return str_format("cozmox.client(%s%s)", c.base_url, c._handle and "" or ", closed")
end

local function ms(seconds)
    return str_format("%.1f", seconds * 1000)
end

-- One COZMOX_DEBUG line on stderr: method, path, outcome, timings, attempt.
-- Never the token, headers or body.
local function trace(self, method, path, attempt, outcome, meta, wait)
    local t = meta and meta.timings
    local line = str_format("cozmox: %s %s -> %s", method, path, outcome)
    if t then
        line = line .. str_format(" (%s ms: dns %s, connect %s, tls %s, first byte %s)",
            ms(t.total), ms(t.namelookup), ms(t.connect), ms(t.tls), ms(t.first_byte))
    end
    line = line .. str_format(" attempt %d/%d", attempt, self._max_retries + 1)
    if wait then line = line .. str_format(", retrying in %.2f s", wait) end
    io_stderr:write(line, "\n")
end

-- The error object for one attempt's outcome (perform's values), or nil
-- for a success, and whether the failure may be retried.
local function classify(method, path, status, value, kind, message, code, extra)
    if status == nil then
        -- extra: some response byte had arrived; then never retried.
        return new_error({ kind = kind, message = message, curl_code = code, method = method, path = path }),
            not extra and (kind == "network" or kind == "timeout")
    end
    if kind == "too_large" or (kind == "decode" and status >= 200 and status < 300) then
        return new_error({ kind = kind, message = message, status = status, method = method, path = path }), false
    end
    if status < 200 or status >= 300 then
        return http_error(status, value, extra, method, path), RETRY_STATUS[status] or false
    end
    return nil, false
end

-- After one attempt: trace it, call the hook, and say how long to wait
-- before the next attempt (nil: no retry).  header(name) reads a header
-- of the attempt's response.
function Client:_after_attempt(method, path, attempt, status, err, retryable, may_retry, header, meta)
    local wait
    if err and retryable and may_retry and attempt <= self._max_retries then
        wait = retry_delay(attempt, status, status and header, self._max_retry_wait)
    end
    if meta then meta.attempt, meta.method, meta.path = attempt, method, path end
    if self._debug then
        trace(self, method, path, attempt, err and (err.kind == "http" and ("HTTP " .. status)
            or (err.kind .. ": " .. tostring(err.message))) or ("HTTP " .. status), meta, wait)
    end
    if self._on_response and meta then self._on_response(meta) end
    if err and not wait then err.attempts = attempt end
    return wait
end

function Client:_check_open(level)
    if self._handle == nil then error("cozmox: the client is closed", level + 1) end
    if not self._has_token then
        return new_error({ kind = "config", message = NO_TOKEN })
    end
end

--- The transport for this call: the custom function's, curl's, or (inside
--  nginx, in a phase where cosockets work) the cosocket one.  "nginx"
--  where cosockets are unavailable is a config error.
function Client:_transport()
    local choice = self._transport_choice
    if choice == "curl" then return self._handle end
    if choice == "auto" then
        if not nginx_can_yield() then return self._handle end
    elseif choice == "nginx" then
        if not nginx_can_yield() then
            local phase = transport.in_nginx() and ngx.get_phase() or "outside nginx"
            return nil, new_error({ kind = "config", message = "the nginx transport cannot run here ("
                .. tostring(phase) .. "): cosockets are unavailable; use transport = \"curl\" or \"auto\"" })
        end
    end
    return self._other
end

--- Perform one request with retries; path is already escaped.  Returns
--  the decoded body (nil for an empty one) and the status, or nil, err.
--  retry_any: the caller opts in to retrying a non-idempotent method.
function Client:_send(method, path, body, header_lines, retry_any)
    local cerr = self:_check_open(2)
    if cerr then
        cerr.method, cerr.path = method, path
        return nil, cerr
    end
    local handle, terr = self:_transport()
    if not handle then
        terr.method, terr.path = method, path
        return nil, terr
    end
    local url = self.base_url .. path
    local may_retry = retry_any or IDEMPOTENT[method]
    local want_meta = self._on_response or self._debug
    local header = function(name) return handle:header(name) end
    local attempt = 0
    while true do
        attempt = attempt + 1
        local status, value, kind, message, code, extra = handle:perform(method, url, body, header_lines)
        local err, retryable = classify(method, path, status, value, kind, message, code, extra)
        local meta = want_meta and status and handle:meta() or nil
        local wait = self:_after_attempt(method, path, attempt, status, err, retryable, may_retry, header, meta)
        if not err then return value, status end
        if not wait then return nil, err end
        self._sleep(wait)
    end
end

--- GET many paths at once (curl multi, at most `concurrency` in flight).
--  Returns values, errors: tables indexed like paths.  Each request has
--  its own attempts; a round of retries starts once the round before has
--  finished, after the longest wait any of its requests asked for.
function Client:_get_many(paths, concurrency, as_object)
    local n = #paths
    local values, errs = {}, {}
    local cerr = self:_check_open(3)
    if cerr then
        for i = 1, n do
            errs[i] = new_error({ kind = "config", message = cerr.message, method = "GET", path = paths[i] })
        end
        return values, errs
    end
    local handle, terr = self:_transport()
    if not handle then
        for i = 1, n do
            errs[i] = new_error({ kind = "config", message = terr.message, method = "GET", path = paths[i] })
        end
        return values, errs
    end
    local base = self.base_url
    local want_meta = (self._on_response or self._debug) and true or false
    local pending, attempts = {}, {}
    for i = 1, n do pending[i], attempts[i] = i, 0 end
    while #pending > 0 do
        local urls = {}
        for k, i in ipairs(pending) do urls[k] = base .. paths[i] end
        local outs = handle:perform_many(urls, concurrency, want_meta)
        local again, longest = {}, 0
        for k, i in ipairs(pending) do
            local o, path = outs[k], paths[i]
            attempts[i] = attempts[i] + 1
            local err, retryable
            if o == nil then
                err, retryable = new_error({ kind = "network", message = "request was not performed",
                    method = "GET", path = path }), true
            else
                err, retryable = classify("GET", path, o.status, o.value, o.kind, o.message, o.curl_code,
                    o.started ~= nil and o.started or o.snippet)
            end
            local header = function(name)
                if name == "retry-after" then return o and o.retry_after end
                if name == "x-ratelimit-reset" then return o and o.ratelimit_reset end
            end
            local wait = self:_after_attempt("GET", path, attempts[i], o and o.status, err, retryable, true,
                header, o and o.meta)
            if not err then
                if as_object then values[i], errs[i] = as_object(o.value, o.status, "GET", path)
                else values[i] = o.value end
            elseif wait then
                again[#again + 1] = i
                if wait > longest then longest = wait end
            else
                errs[i] = err
            end
        end
        pending = again
        if #pending > 0 then self._sleep(longest) end
    end
    return values, errs
end

-- A decoded 2xx body as the JSON object an endpoint promises, or nil, err.
local function as_object(value, status, method, path)
    if value == nil then
        return nil, new_error({ kind = "decode", message = "empty response body", status = status,
            method = method, path = path })
    end
    if type(value) ~= "table" or getmetatable(value) ~= nil then
        return nil, new_error({ kind = "decode", message = "expected a JSON object in the response",
            status = status, method = method, path = path })
    end
    return value
end
_M.as_object = as_object

--- Like _send, for endpoints that answer with one JSON object.
function Client:_object(method, path, body, retry_any)
    local value, status = self:_send(method, path, body, nil, retry_any)
    if value == nil and type(status) ~= "number" then return nil, status end
    return as_object(value, status, method, path)
end

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true }

local function argerror(n, fname, msg)
    error(str_format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

local function query_value(v)
    local t = type(v)
    if t == "string" then return v end
    if t == "boolean" then return tostring(v) end
    if t == "number" then
        if v == math_floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return str_format("%d", v) end
        return (str_gsub(str_format("%.17g", v), ",", "."))
    end
    return nil
end

--- "?k=v&..." from a table (keys sorted, so URLs are deterministic).
function _M.query_string(query, fname)
    local keys = {}
    for k, v in pairs(query) do
        if type(k) ~= "string" then argerror(3, fname, "query keys must be strings") end
        if query_value(v) == nil then
            argerror(3, fname, str_format("query value '%s' must be a string, number or boolean", k))
        end
        keys[#keys + 1] = k
    end
    if #keys == 0 then return "" end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
        parts[i] = escape_segment(k) .. "=" .. escape_segment(query_value(query[k]))
    end
    return "?" .. table.concat(parts, "&")
end
local query_string = _M.query_string

--- client:request(method, path [, { query =, body =, headers =, retry = }]) -> value, err
--  Any endpoint of the API with the client's auth, limits and errors.
--  path starts with "/" and is sent as given (escape ids with
--  cozmox.escape_segment); query values are percent-encoded; body is
--  encoded with cozmox.json.encode.  An empty 2xx body gives true.
--  retry = true also retries POST and PATCH (only safe if the endpoint is).
function Client:request(method, path, opts)
    if type(method) ~= "string" or not METHODS[method] then
        argerror(1, "request", "HTTP method expected (GET, POST, PUT, PATCH, DELETE or HEAD)")
    end
    if type(path) ~= "string" or not str_find(path, "^/") or str_find(path, "[%s%z%c#?]") then
        argerror(2, "request", "path starting with '/' expected, without spaces, control characters, '?' or '#'")
    end
    local body, lines
    if opts ~= nil then
        if type(opts) ~= "table" then argerror(3, "request", "table expected, got " .. type(opts)) end
        for k in pairs(opts) do
            if k ~= "query" and k ~= "body" and k ~= "headers" and k ~= "retry" then
                argerror(3, "request", "unknown option '" .. tostring(k) .. "'")
            end
        end
        if opts.query ~= nil then
            if type(opts.query) ~= "table" then argerror(3, "request", "option 'query' must be a table") end
            path = path .. query_string(opts.query, "request")
        end
        if opts.body ~= nil then body = encode(opts.body) end
        if opts.headers ~= nil then
            if type(opts.headers) ~= "table" then argerror(3, "request", "option 'headers' must be a table") end
            lines = {}
            for name, value in pairs(opts.headers) do
                if type(name) ~= "string" or not str_find(name, "^[%w!#$%%&'*+.^_`|~-]+$") then
                    argerror(3, "request", "header names must be HTTP tokens")
                end
                local lname = string.lower(name)
                if lname == "authorization" or lname == "host" or lname == "content-length" then
                    argerror(3, "request", "header '" .. name .. "' is set by the client")
                end
                if type(value) ~= "string" or has_ctl(value) then
                    argerror(3, "request", "header '" .. name .. "' must be a string without CR, LF or NUL")
                end
                lines[#lines + 1] = name .. ": " .. value
            end
        end
    end
    local value, status = self:_send(method, path, body, lines, opts ~= nil and opts.retry == true)
    if value == nil then
        if type(status) == "number" then return true end
        return nil, status
    end
    return value
end

--- Release the connection now (also done by the garbage collector).
function Client:close()
    local h = self._handle
    if h then
        self._handle = nil
        h:close()
    end
end

Client.__close = Client.close

--- cozmox.client.new(opts): see cozmox.new.
function _M.new(opts)
    local s = settings(opts)
    if s.insecure and not insecure_warned then
        insecure_warned = true
        io_stderr:write("cozmox: WARNING: TLS certificate verification is disabled (insecure = true)\n")
    end
    local auth = s.token and ("Authorization: Bearer " .. s.token)
    local handle = new_handle({
        auth = auth,
        user_agent = s.user_agent, timeout = s.timeout, connect_timeout = s.connect_timeout,
        max_response_bytes = s.max_response_bytes, json = { max_depth = s.max_depth, big_integers = s.json_big_integers },
        ca_file = s.ca_file, ca_path = s.ca_path, proxy = s.proxy, insecure = s.insecure,
        follow_redirects = s.follow_redirects,
    })
    local c = setmetatable({
        base_url = s.base_url, _handle = handle, _has_token = s.token ~= nil,
        _max_retries = s.max_retries, _max_retry_wait = s.max_retry_wait,
        _sleep = s.sleep or default_sleep, _debug = s.debug, _on_response = s.on_response,
        _transport_choice = type(s.transport) == "function" and "custom" or s.transport,
    }, Client)
    -- The other transport holds its own copy of the Authorization line.
    if type(s.transport) == "function" then
        c._other = transport.custom(s.transport, s, auth)
    elseif s.transport ~= "curl" and transport.in_nginx() then
        c._other = transport.nginx(s, auth)
    end
    c.session = session.bind(c)
    return c
end

_M.Client = Client

return _M
