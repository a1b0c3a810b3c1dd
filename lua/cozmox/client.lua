--- cozmox.client: a configured connection to the API.
--
-- A client resolves its options once (cozmox.options), owns its
-- transports (cozmox.transport.*) and runs every call the same way on all
-- of them: build the request record, let the transport deliver the result
-- record, follow redirects, turn the record into an error object
-- (cozmox.errors), and retry by the policy of cozmox.retry -- within one
-- deadline: `timeout` bounds the whole call, every attempt, redirect and
-- wait included.
--
-- The token lives in a weak table keyed by the client (and the
-- Authorization line in the transports' own), never in the client table:
-- it cannot leak through tostring, pairs, errors or traces.  The rest of
-- the client's state is its _state field, used by this file only.
local core = require("cozmox.core")
local errors = require("cozmox.errors")
local options = require("cozmox.options")
local retry = require("cozmox.retry")
local session = require("cozmox.session")
local transport = require("cozmox.transport")

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local setmetatable, getmetatable, require = setmetatable, getmetatable, require
local str_format, str_find, str_lower = string.format, string.find, string.lower
local math_min, math_max = math.min, math.max
local concat, sort = table.concat, table.sort
local now, escape_segment, encode = core.now, core.escape_segment, core.encode
local new_error, from_record, TRANSPORT_KINDS = errors.new, errors.from_record, errors.TRANSPORT_KINDS
local io_stderr = io.stderr
local IDEMPOTENT, retryable, retry_delay = retry.IDEMPOTENT, retry.retryable, retry.delay
local nginx_can_yield, in_nginx = transport.nginx_can_yield, transport.in_nginx
local resolve_location, parse_url, same_origin = transport.resolve_location, transport.parse_url, transport.same_origin
local clean_location = transport.clean_location

local _M = {}

_M.VERSION = require("cozmox").VERSION
_M.DEFAULT_BASE_URL = options.DEFAULT_BASE_URL
local RUNTIME = (type(jit) == "table" and jit.version) or _VERSION
--- Our product token and runtime; each transport adds its engine.
_M.USER_AGENT = str_format("cozmox-lua/%s %s", _M.VERSION, RUNTIME)

local NO_TOKEN = "no API token: set the COZMOX_TOKEN environment variable "
    .. "or pass one with cozmox.new({ token = ... })"

local MAX_REDIRECTS = 5
local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- Said once per Lua state, the first time a client disables verification.
local insecure_warned = false

-- client -> { token =, auth = } (strings only: nothing here can keep a
-- client alive)
local secrets = setmetatable({}, { __mode = "k" })

local Client = {}
Client.__index = Client
Client.__name = "cozmox.client"

function Client.__tostring(c)
    return str_format("cozmox.client(%s%s)", c.base_url, c._state.closed and ", closed" or "")
end

-- ------------------------------------------------------------ transports

-- The sleep used between retries: ngx.sleep inside nginx where it can
-- yield (it does not block the worker), else the C core's nanosleep.
local function default_sleep(seconds)
    if nginx_can_yield() then return ngx.sleep(seconds) end
    return core.sleep(seconds)
end

-- The sleep of a client with an event-loop adapter: the adapter's own,
-- else one through its wait -- never the blocking default.
local function loop_sleep(loop)
    if loop.sleep then return loop.sleep end
    return loop.wait and require("cozmox.transport.loop").sleep_with(loop.wait)
end

--- The transport for this call: the loop adapter's own (made once), the
--  custom function's, curl's, or (inside nginx, in a phase where
--  cosockets work) the cosocket one.  "nginx" where cosockets are
--  unavailable is a config error.
local function transport_for(st)
    if st.s.loop and st.s.loop.transport then
        st.loop = st.loop or st.s.loop.transport(st.s, st.secret())
        return st.loop
    end
    if st.s.loop then -- a `wait` adapter: curl driven by the host's loop (made once)
        st.loop = st.loop or require("cozmox.transport.loop").new(st.s, st.secret(), st.s.loop)
        return st.loop
    end
    local choice = st.s.transport
    if type(choice) == "function" then return st.custom end
    if choice == "curl" or (choice == "auto" and not nginx_can_yield()) then
        st.curl = st.curl or require("cozmox.transport.curl").new(st.s, st.secret())
        return st.curl
    end
    if choice == "nginx" and not nginx_can_yield() then
        local phase = in_nginx() and ngx.get_phase() or "outside nginx"
        return nil, new_error({ kind = "config", message = "the nginx transport cannot run here ("
            .. tostring(phase) .. "): cosockets are unavailable; use transport = \"curl\" or \"auto\"" })
    end
    st.nginx = st.nginx or require("cozmox.transport.nginx").new(st.s, st.secret())
    return st.nginx
end

-- ------------------------------------------------------------ one exchange

local function request_record(method, url, body, lines, no_auth, deadline, s)
    local left = math_max(deadline - now(), 0.001)
    return { method = method, url = url, body = body, headers = lines, no_auth = no_auth,
        timeout = left, deadline = deadline, connect_timeout = math_min(s.connect_timeout, left) }
end

local function timeout_record(what)
    return transport.failure("timeout", "the call's timeout was reached " .. what, 28)
end

-- Follow the redirects of rec (the answer to method url) as curl would:
-- http and https only, at most 5, Authorization never sent to another
-- origin, https -> http refused unless allowed, 303 (and 301/302 after a
-- POST) continue as GET.  Returns the final record.
local function follow(st, t, method, url, body, lines, deadline, want_meta, rec)
    local s, hops, no_auth = st.s, 0, false
    local origin = url
    -- (a redirect's body does not matter: only a failed exchange stops)
    while s.follow_redirects and rec.status and REDIRECT[rec.status] and not TRANSPORT_KINDS[rec.kind] do
        local location = rec.headers and rec.headers.location
        if not location or location == "" then break end
        hops = hops + 1
        if hops > MAX_REDIRECTS then
            return transport.failure("network", "more than " .. MAX_REDIRECTS .. " redirects", 47, true)
        end
        location = clean_location(location)
        if not location then
            return transport.failure("network", "redirect with an invalid Location header refused", 8, true)
        end
        local next_url = resolve_location(url, location)
        local scheme = next_url and parse_url(next_url)
        if not scheme then
            return transport.failure("network", "redirect to a URL that is not http:// or https:// refused", 1, true)
        end
        if scheme == "http" and str_lower(url):find("^https:") and not s.allow_insecure_redirects then
            return transport.failure("tls", "redirect from https:// to http:// refused "
                .. "(allow_insecure_redirects = true allows it)", 1, true)
        end
        if rec.status == 303 or ((rec.status == 301 or rec.status == 302) and method == "POST") then
            method, body = (method == "HEAD") and "HEAD" or "GET", nil
        end
        no_auth = no_auth or not same_origin(origin, next_url)
        url = next_url
        if st.closed then return transport.failure("closed", "the client was closed during the call", 0, true) end
        if deadline - now() <= 0 then return timeout_record("while following redirects") end
        rec = t:perform(request_record(method, url, body, lines, no_auth, deadline, s), want_meta)
    end
    if rec.meta then rec.meta.redirects = hops end
    return rec
end

-- ------------------------------------------------------------ attempts

local function ms(seconds)
    return str_format("%.1f", seconds * 1000)
end

-- One COZMOX_DEBUG line on stderr: method, path, outcome, timings, attempt.
-- Never the token, headers or body.
local function trace(s, method, path, attempt, rec, err, wait)
    local outcome = err and (err.kind == "http" and ("HTTP " .. err.status) or (err.kind .. ": " .. err.message))
        or ("HTTP " .. tostring(rec.status))
    local line = str_format("cozmox: %s %s -> %s", method, path, outcome)
    local t = rec.meta and rec.meta.timings
    if t then
        line = line .. str_format(" (%s ms: dns %s, connect %s, tls %s, first byte %s)",
            ms(t.total), ms(t.namelookup), ms(t.connect), ms(t.tls), ms(t.first_byte))
    end
    line = line .. str_format(" attempt %d/%d", attempt, s.max_retries + 1)
    if wait then line = line .. str_format(", retrying in %.2f s", wait) end
    io_stderr:write(line, "\n")
end

-- After one attempt: the error object (nil for a success) and how long to
-- wait before the next attempt (nil: none).  Traces it and calls the hook.
local function after_attempt(st, method, path, attempt, rec, may_retry, deadline)
    local s = st.s
    local secret = st.secret()
    local err = from_record(rec, method, path, secret and secret.token)
    local wait
    if err and may_retry and attempt <= s.max_retries and retryable(rec, err) then
        wait = retry_delay(attempt, rec, s.max_retry_wait)
        if now() + wait >= deadline then wait = nil end -- it would not fit in the timeout
    end
    if s.debug then trace(s, method, path, attempt, rec, err, wait) end
    local meta = rec.meta
    if s.on_response and meta then
        meta.attempt, meta.method, meta.path = attempt, method, path
        s.on_response(meta)
    end
    if err and not wait then err.attempts = attempt end
    return err, wait
end

-- The wait before a retry.  Our own sleeps go in slices of at most
-- 50 ms so that close() from another coroutine, light thread or
-- callback ends it promptly (a Retry-After may ask for up to
-- max_retry_wait); a `sleep` the caller gave is called once, as given.
local PAUSE_SLICE = 0.05
local function pause(st, s, seconds)
    if not s.sleep_sliced then return s.sleep(seconds) end
    local sleep, stop = s.sleep, now() + seconds
    while not st.closed do
        local left = stop - now()
        if left <= 0 then return end
        sleep(left < PAUSE_SLICE and left or PAUSE_SLICE)
    end
end

local function closed_error(method, path, attempts)
    return new_error({ kind = "closed", message = "the client was closed during the call",
        method = method, path = path, attempts = attempts })
end

local function check_open(self, level)
    local st = self._state
    if st.closed then error("cozmox: the client is closed", level + 1) end
    return st
end

-- One call: attempts until success, a failure that is not retried, or
-- the deadline.  path is already escaped.  Returns the decoded body (nil
-- for an empty one) and the status, or nil, err.
local function call(st, method, path, body, lines, retry_any)
    local s = st.s
    if not st.has_token then
        return nil, new_error({ kind = "config", message = NO_TOKEN, method = method, path = path })
    end
    local deadline = now() + s.timeout
    local url = s.base_url .. path
    local may_retry = retry_any or IDEMPOTENT[method]
    local want_meta = (s.on_response or s.debug) and true or false
    local attempt = 0
    while true do
        attempt = attempt + 1
        local t, terr = transport_for(st)
        if not t then
            terr.method, terr.path = method, path
            return nil, terr
        end
        local rec = t:perform(request_record(method, url, body, lines, false, deadline, s), want_meta)
        rec = follow(st, t, method, url, body, lines, deadline, want_meta, rec)
        local err, wait = after_attempt(st, method, path, attempt, rec, may_retry, deadline)
        if not err then return rec.value, rec.status end
        if not wait then return nil, err end
        if st.closed then return nil, closed_error(method, path, attempt) end
        pause(st, s, wait)
        if st.closed then return nil, closed_error(method, path, attempt) end
        if now() >= deadline then -- the sleep took what was left
            err.attempts = attempt
            return nil, err
        end
    end
end

-- GET many paths at once (at most `concurrency` in flight), within one
-- deadline for the batch.  shape(value, status, method, path) -> obj |
-- nil, err turns a decoded body into the caller's result.  Returns
-- results, errors (both with one entry per path: the value or false, the
-- error or false) and how many failed.  A round of retries starts once
-- the round before has finished, after the longest wait asked for.
local function call_many(st, paths, concurrency, shape)
    local s, n = st.s, #paths
    local results, errs, failed = {}, {}, 0
    for i = 1, n do results[i], errs[i] = false, false end
    local function fail_all(err)
        for i = 1, n do
            errs[i] = new_error({ kind = err.kind, message = err.message, method = "GET", path = paths[i] })
        end
        return results, errs, n
    end
    if not st.has_token then return fail_all({ kind = "config", message = NO_TOKEN }) end
    local deadline = now() + s.timeout
    local want_meta = (s.on_response or s.debug) and true or false
    local pending, attempts, last = {}, {}, {}
    for i = 1, n do pending[i], attempts[i] = i, 0 end
    while #pending > 0 do
        local t, terr = transport_for(st)
        if not t then return fail_all(terr) end
        if st.closed then
            for _, i in ipairs(pending) do errs[i], failed = closed_error("GET", paths[i], attempts[i]), failed + 1 end
            break
        end
        local reqs = {}
        for k, i in ipairs(pending) do
            reqs[k] = request_record("GET", s.base_url .. paths[i], nil, nil, false, deadline, s)
        end
        local recs = t:perform_many(reqs, concurrency, want_meta)
        local again, longest = {}, 0
        for k, i in ipairs(pending) do
            local path, rec = paths[i], recs[k]
            attempts[i] = attempts[i] + 1
            rec = follow(st, t, "GET", reqs[k].url, nil, nil, deadline, want_meta, rec)
            local err, wait = after_attempt(st, "GET", path, attempts[i], rec, true, deadline)
            if not err then
                local v, serr = shape(rec.value, rec.status, "GET", path)
                if v ~= nil then results[i] = v else errs[i], failed = serr, failed + 1 end
            elseif wait then
                again[#again + 1] = i
                last[i] = err
                longest = math_max(longest, wait)
            else
                errs[i], failed = err, failed + 1
            end
        end
        pending = again
        if #pending > 0 then
            if st.closed or now() + longest >= deadline then
                for _, i in ipairs(pending) do
                    errs[i] = st.closed and closed_error("GET", paths[i], attempts[i])
                        or new_error({ kind = "timeout", message = "the call's timeout was reached before a retry",
                            method = "GET", path = paths[i], attempts = attempts[i] })
                    failed = failed + 1
                end
                break
            end
            pause(st, s, longest)
            if st.closed or now() >= deadline then -- the sleep took what was left
                for _, i in ipairs(pending) do
                    local err = st.closed and closed_error("GET", paths[i], attempts[i]) or last[i]
                    err.attempts = attempts[i]
                    errs[i], failed = err, failed + 1
                end
                break
            end
        end
    end
    return results, errs, failed
end

-- ------------------------------------------------------------ public API

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

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true }

local function argerror(n, fname, msg, level)
    error(str_format("bad argument #%d to '%s' (%s)", n, fname, msg), (level or 2) + 1)
end

-- A query value as text: strings as they are, booleans as true/false,
-- numbers exactly as cozmox.json.encode writes them (integers exact,
-- floats shortest round-trip; NaN and infinities refused).
local function query_value(v)
    local t = type(v)
    if t == "string" then return v end
    if t == "boolean" then return tostring(v) end
    if t == "number" then
        if v ~= v or v == math.huge or v == -math.huge then return nil, "must be a finite number" end
        return encode(v)
    end
    return nil, "must be a string, number or boolean"
end

--- "?k=v&..." from a table (keys sorted, so URLs are deterministic).
--  Raises bad argument #arg of fname, at level (default: fname's caller).
function _M.query_string(query, fname, arg, level)
    arg, level = arg or 3, (level or 2) + 1
    local keys, values = {}, {}
    for k, v in pairs(query) do
        if type(k) ~= "string" then argerror(arg, fname, "query keys must be strings", level) end
        local text, why = query_value(v)
        if text == nil then argerror(arg, fname, str_format("query value '%s' %s", k, why), level) end
        keys[#keys + 1], values[k] = k, text
    end
    if #keys == 0 then return "" end
    sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = escape_segment(k) .. "=" .. escape_segment(values[k]) end
    return "?" .. concat(parts, "&")
end
local query_string = _M.query_string

local function check_self(self, fname)
    if getmetatable(self) ~= Client then
        error(str_format("bad argument #1 to '%s' (cozmox.client expected, got %s; call it as client:%s(...))",
            fname, type(self), fname), 3)
    end
end

local RESERVED = { authorization = true, host = true, ["content-length"] = true, ["content-type"] = true,
    ["transfer-encoding"] = true, connection = true }

--- client:request(method, path [, { query =, body =, headers =, retry = }]) -> value, err
--  Any endpoint of the API with the client's auth, limits and errors.
--  path starts with "/" and is sent as given (escape ids with
--  cozmox.escape_segment); query values are percent-encoded; body is
--  encoded with cozmox.json.encode.  The decoded body comes back as the
--  first value -- a JSON false or null included, so test `err`, not the
--  value; an empty 2xx body gives true.  retry = true also retries POST and
--  PATCH (only safe if the endpoint is).
function Client:request(method, path, opts)
    check_self(self, "request")
    if type(method) ~= "string" or not METHODS[method] then
        argerror(1, "request", "HTTP method expected (GET, POST, PUT, PATCH, DELETE or HEAD)")
    end
    if type(path) ~= "string" or not str_find(path, "^/") or str_find(path, "[%s%z%c#?\127]") then
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
            path = path .. query_string(opts.query, "request", 3, 2)
        end
        if opts.body ~= nil then
            local ok, text = pcall(encode, opts.body)
            if not ok then argerror(3, "request", "option 'body' cannot be encoded: " .. tostring(text)) end
            body = text
        end
        if opts.headers ~= nil then
            if type(opts.headers) ~= "table" then argerror(3, "request", "option 'headers' must be a table") end
            lines = {}
            for name, value in pairs(opts.headers) do
                if type(name) ~= "string" or not str_find(name, "^[%w!#$%%&'*+.^_`|~-]+$") then
                    argerror(3, "request", "header names must be HTTP tokens")
                end
                if RESERVED[str_lower(name)] then
                    argerror(3, "request", "header '" .. name .. "' is set by the client")
                end
                if type(value) ~= "string" or options.has_ctl(value) then
                    argerror(3, "request", "header '" .. name .. "' must be a string without control characters")
                end
                lines[#lines + 1] = name .. ": " .. value
            end
            sort(lines)
        end
    end
    local st = check_open(self, 2)
    local value, status = call(st, method, path, body, lines, opts ~= nil and opts.retry == true)
    if value == nil then
        if type(status) == "number" then return true end
        return nil, status
    end
    return value
end

--- Release the connection now (also done by the garbage collector).
--  Calling it twice is harmless; a call waiting to retry then ends with
--  an error of kind "closed".
function Client:close()
    local st = self._state
    if st.closed then return end
    st.closed = true
    if st.curl then st.curl:close() end
    if st.nginx then st.nginx:close() end
    if st.custom then st.custom:close() end
    if st.loop then st.loop:close() end
end

Client.__close = Client.close

-- The documented interface session.lua builds its resource on.
local function api_of(c)
    local api = {}
    --- value | nil, err for an endpoint answering with one JSON object.
    --  level: the user's frame as seen from here (default 3: the
    --  caller of the resource function calling this).
    function api.object(method, path, body, retry_any, level)
        local st = check_open(c, level or 3)
        local value, status = call(st, method, path, body, nil, retry_any)
        if value == nil and type(status) ~= "number" then return nil, status end
        return as_object(value, status, method, path)
    end
    --- results, errors, failed for GET of many paths.
    function api.get_many(paths, concurrency, shape)
        local results, errs, failed = call_many(check_open(c, 3), paths, concurrency, shape)
        return results, errs, failed
    end
    api.query_string = query_string
    api.as_object = as_object
    return api
end

--- cozmox.client.new(opts): see cozmox.new.  level: the caller's frame
--  for a bad option (default: new's caller).
function _M.new(opts, level)
    local s = options.resolve(opts, (level or 1) + 1)
    if s.insecure and not insecure_warned then
        insecure_warned = true
        io_stderr:write("cozmox: WARNING: TLS certificate verification is disabled (insecure = true)\n")
    end
    s.sleep_sliced = s.sleep == nil
    s.sleep = s.sleep or (s.loop and loop_sleep(s.loop)) or default_sleep
    s.ua_product = (s.user_agent and (s.user_agent .. " ") or "") .. "cozmox-lua/" .. _M.VERSION
    s.ua_runtime = RUNTIME
    local token = s.token
    s.token = nil
    local st = { s = s, has_token = token ~= nil }
    local c = setmetatable({ base_url = s.base_url, _state = st }, Client)
    secrets[c] = token and { token = token, auth = "Authorization: Bearer " .. token } or nil
    function st.secret() return secrets[c] end
    if type(s.transport) == "function" then
        st.custom = require("cozmox.transport.custom").new(s, secrets[c], s.transport)
    end
    c.session = session.bind(api_of(c))
    return c
end

_M.Client = Client

--- Does client c have a token (from its options or the environment)?
function _M.has_token(c)
    return secrets[c] ~= nil
end

return _M
