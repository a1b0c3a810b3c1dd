--- cozmox.retry: when to retry a request and how long to wait first.
--
-- Retried: HTTP 408, 429, 500, 502, 503, 504, and network failures
-- before any response byte arrived (connection refused or reset, connect
-- timeout) -- not a name that does not resolve -- for idempotent methods
-- (GET, HEAD, PUT, DELETE) or when the call opts in.
-- Waits: exponential backoff with full jitter (base 0.5 s, cap 8 s); for
-- 429 and 503 a Retry-After header (delta-seconds or HTTP-date) wins, else
-- X-RateLimit-Reset (epoch seconds); every wait is capped by max_retry_wait.
-- The policy reads the result record (cozmox.transport) and nothing else.
local days_from_civil = require("cozmox.time").days_from_civil
local math_random, math_min, math_max = math.random, math.min, math.max
local os_time, tonumber, type = os.time, tonumber, type
local str_match, str_lower = string.match, string.lower

local _M = {
    BASE = 0.5,
    CAP = 8,
    STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true },
    IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true },
}

--- Full-jitter exponential backoff before retry number `attempt` (1-based).
function _M.backoff(attempt)
    return math_random() * math_min(_M.CAP, _M.BASE * 2 ^ (attempt - 1))
end

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
    jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }

--- Epoch seconds of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil.
function _M.http_date(s)
    local d, mon, y, hh, mm, ss = str_match(s, "^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    local m = mon and MONTHS[str_lower(mon)]
    if not m then return nil end
    return days_from_civil(tonumber(y), m, tonumber(d)) * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- A header value the server controls, if short enough to be what we
-- look for: longer ones are not matched at all (patterns with optional
-- parts backtrack on long inputs, and never yield to the deadline).
local function short(v)
    if type(v) ~= "string" or #v > 40 then return nil end
    return v
end

--- Seconds the server asked us to wait (429/503), or nil.  header(name)
--  returns a response header of the last response.
function _M.server_wait(status, header, now)
    now = now or os_time()
    if status == 429 or status == 503 then
        local ra = short(header("retry-after"))
        if ra then
            if str_match(ra, "^%s*%d+%s*$") then return tonumber(ra) end
            local at = _M.http_date(ra)
            if at then return math_max(0, at - now) end
        end
    end
    local reset = short(header("x-ratelimit-reset"))
    if reset and str_match(reset, "^%s*%d+%.?%d*%s*$") then
        return math_max(0, tonumber(reset) - now)
    end
    return nil
end

local CURLE_COULDNT_RESOLVE_HOST = 6

--- May the failure this record and error describe be retried?
function _M.retryable(rec, err)
    if err.kind == "http" then return _M.STATUS[err.status] == true end
    if err.kind == "network" or err.kind == "timeout" then
        return not rec.started and rec.code ~= CURLE_COULDNT_RESOLVE_HOST
    end
    return false
end

--- The wait before the next attempt after a retryable failure.
function _M.delay(attempt, rec, max_wait)
    local headers = rec.headers
    local wait = rec.status and headers and _M.server_wait(rec.status, function(name) return headers[name] end)
        or _M.backoff(attempt)
    return math_min(wait, max_wait)
end

return _M
