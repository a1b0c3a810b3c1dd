--- cozmox.options: every option of cozmox.new, written once.
--
-- SPECS is the one table of option specs: name, type, default, check and
-- what it means.  resolve(opts) validates a user's table against it (once,
-- when the client is made) and returns the settings record every layer
-- reads: the client, its retry policy and every transport.  No default is
-- written anywhere else.
--
-- A wrong option raises "bad argument #1 to 'new' (option 'x' ...)" at
-- the caller's line (level: how many frames above resolve's caller the
-- user's call is).
local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local str_format, str_find, str_match, str_gsub, str_lower =
    string.format, string.find, string.match, string.gsub, string.lower
local math_floor, os_getenv = math.floor, os.getenv

local _M = {}

_M.DEFAULT_BASE_URL = "https://api.cozmox.ai"

local function has_ctl(s)
    return str_find(s, "[%z\1-\31\127]") ~= nil
end
_M.has_ctl = has_ctl

-- check(v) -> nil when v is acceptable, else what it must be.
local function number_in(lo, hi, what)
    return function(v)
        if not (v >= lo and v <= hi) then return what end
    end
end

local function integer_in(lo, hi, what)
    return function(v)
        if not (v >= lo and v <= hi) or math_floor(v) ~= v then return what end
    end
end

local function one_of(...)
    local set, names = {}, {}
    for i, s in ipairs({ ... }) do
        set[s] = true
        names[i] = '"' .. s .. '"'
    end
    local what = "must be " .. table.concat(names, ", ", 1, #names - 1) .. " or " .. names[#names]
    return function(v)
        if type(v) == "string" and not set[v] then return what end
    end
end

local function no_ctl(v)
    if v == "" or has_ctl(v) then return "must be a non-empty string without control characters" end
end

-- A loop adapter: a table with a function `wait` (the loop-driven curl
-- transport waits through it) or a function `transport` (it brings its
-- own transport, e.g. cozmox.loop.haproxy()).
local function loop_adapter(v)
    if type(v.wait) ~= "function" and type(v.transport) ~= "function" then
        return "must be a loop adapter (a table with a function 'wait' or 'transport', e.g. cozmox.loop.haproxy())"
    end
    if v.sleep ~= nil and type(v.sleep) ~= "function" then
        return "must be a loop adapter whose 'sleep', when given, is a function"
    end
end

-- Seconds: at least a millisecond, at most a week (curl counts in ms).
local WEEK = 7 * 86400

--- The option specs, in the order the README lists them.
_M.SPECS = {
    { name = "token", type = "string", env = "COZMOX_TOKEN", check = no_ctl,
      doc = "API token, sent as `Authorization: Bearer ...`" },
    { name = "base_url", type = "string", env = "COZMOX_BASE_URL", default = _M.DEFAULT_BASE_URL,
      doc = "`http://` or `https://` URL of the API" },
    { name = "timeout", type = "number", default = 60,
      check = number_in(0.001, WEEK, "must be a number of seconds between 0.001 and 604800"),
      doc = "the whole call, retries and waits included (seconds)" },
    { name = "connect_timeout", type = "number", default = 10,
      check = number_in(0.001, WEEK, "must be a number of seconds between 0.001 and 604800"),
      doc = "name resolution + connection setup of each attempt (seconds)" },
    { name = "max_response_bytes", type = "number", default = 64 * 1024 * 1024,
      check = integer_in(1, 2 ^ 53, "must be an integer between 1 and 2^53"),
      doc = "body size limit, counted after gzip/deflate decoding" },
    { name = "max_depth", type = "number", default = 1000,
      check = integer_in(1, 1000000, "must be an integer between 1 and 1000000"),
      doc = "JSON nesting limit" },
    { name = "json_big_integers", type = "string", default = "number", check = one_of("number", "string"),
      doc = "\"string\": integer literals beyond +-2^53 become strings with their exact digits" },
    { name = "max_retries", type = "number", default = 2,
      check = integer_in(0, 100, "must be an integer between 0 and 100"),
      doc = "retries after the first attempt" },
    { name = "max_retry_wait", type = "number", default = 60,
      check = number_in(0, 86400, "must be a number of seconds between 0 and 86400"),
      doc = "cap on any single wait between attempts (seconds)" },
    { name = "sleep", type = "function", doc = "function(seconds) used between attempts" },
    { name = "ca_file", type = "string", check = no_ctl, doc = "CA bundle file for TLS verification" },
    { name = "ca_path", type = "string", check = no_ctl, doc = "hashed CA directory for TLS verification" },
    { name = "insecure", type = "boolean", default = false, doc = "true disables TLS verification" },
    { name = "proxy", type = "string", check = no_ctl, doc = "proxy URL" },
    { name = "follow_redirects", type = "boolean", default = false, doc = "follow up to 5 redirects" },
    { name = "allow_insecure_redirects", type = "boolean", default = false,
      doc = "with follow_redirects, also follow https -> http" },
    { name = "user_agent", type = "string", check = no_ctl, doc = "product token put in front of ours" },
    { name = "on_response", type = "function", doc = "function(meta) called after every response" },
    { name = "debug", type = "boolean", env = "COZMOX_DEBUG", default = false,
      doc = "one trace line per attempt on stderr" },
    { name = "transport", type = "string|function", default = "auto", check = one_of("auto", "curl", "nginx"),
      doc = "\"auto\", \"curl\", \"nginx\" or a function(req)" },
    { name = "loop", type = "table", check = loop_adapter,
      doc = "the host's event loop adapter (cozmox.loop.*): every call waits without blocking the host" },
}

local BY_NAME = {}
for _, spec in ipairs(_M.SPECS) do BY_NAME[spec.name] = spec end
_M.BY_NAME = BY_NAME

local function bad(name, msg, level)
    error(str_format("bad argument #1 to 'new' (option '%s' %s)", name, msg), level + 1)
end

local function type_ok(want, v)
    local t = type(v)
    if want == "string|function" then return t == "string" or t == "function" end
    return t == want
end

-- base_url: scheme://host[:port][/path], nothing a request would misread.
local function check_base_url(url)
    local scheme, rest = str_match(url, "^(%a[%w+.-]*)://(.*)$")
    if not scheme or (str_lower(scheme) ~= "http" and str_lower(scheme) ~= "https") then
        return "must be an http:// or https:// URL"
    end
    if str_find(url, "[%z\1-\32\127]") then return "must not contain spaces or control characters" end
    if str_find(url, "?", 1, true) then return "must not contain a query ('?'): pass query = { ... } per request" end
    if str_find(url, "#", 1, true) then return "must not contain a fragment ('#')" end
    local authority = str_match(rest, "^([^/]*)")
    if str_find(authority, "@", 1, true) then
        return "must not contain user info ('user:password@'): the token authenticates"
    end
    if authority == "" or not (str_match(authority, "^[%w.-]+$") or str_match(authority, "^[%w.-]+:%d+$")
        or str_match(authority, "^%[[%x:.]+%]$") or str_match(authority, "^%[[%x:.]+%]:%d+$")) then
        return "must have a host name, [IPv6] or IPv4 address and an optional port"
    end
    local port = str_match(authority, ":(%d+)$")
    if port and (tonumber(port) < 1 or tonumber(port) > 65535) then return "has a port out of range" end
    return nil
end
_M.check_base_url = check_base_url

--- Validate opts and return the settings record: every option resolved to
--  its value (the default, or the environment's where the spec names one).
--  level: the user's frame, counted from resolve's caller.
function _M.resolve(opts, level)
    level = (level or 1) + 1
    if opts == nil then opts = {} end
    if type(opts) ~= "table" then
        error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", level)
    end
    for k in pairs(opts) do
        if BY_NAME[k] == nil then
            error(str_format("bad argument #1 to 'new' (unknown option '%s')", tostring(k)), level)
        end
    end
    -- Every option is read once, and what is read is what is checked (a
    -- table of defaults behind __index included).
    local s, given = {}, {}
    for _, spec in ipairs(_M.SPECS) do
        local k, v = spec.name, opts[spec.name]
        if v ~= nil then
            if not type_ok(spec.type, v) then
                bad(k, str_format("must be a %s, got %s", (str_gsub(spec.type, "|", " or ")), type(v)), level)
            end
            if spec.check and type(v) ~= "function" then
                local why = spec.check(v)
                if why then bad(k, why, level) end
            end
            given[k] = true
        else
            v = spec.default
        end
        s[k] = v
    end

    -- From the environment, where the caller did not say.
    if not given.token then
        local env = os_getenv("COZMOX_TOKEN")
        if env ~= nil and env ~= "" then
            if has_ctl(env) then error("cozmox: COZMOX_TOKEN must not contain control characters", level) end
            s.token = env
        end
    end
    if not given.base_url then
        local env = os_getenv("COZMOX_BASE_URL")
        if env ~= nil and env ~= "" then
            local why = check_base_url(env)
            if why then error("cozmox: COZMOX_BASE_URL " .. why, level) end
            s.base_url = env
        end
    else
        local why = check_base_url(s.base_url)
        if why then bad("base_url", why, level) end
    end
    s.base_url = str_gsub(s.base_url, "/+$", "")
    if s.loop and given.transport and s.transport ~= "auto" then
        bad("loop", "cannot be combined with option 'transport' (the adapter decides how requests go)", level)
    end
    if not given.debug then
        local env = os_getenv("COZMOX_DEBUG")
        s.debug = env ~= nil and env ~= "" and env ~= "0"
    end
    return s
end

return _M
