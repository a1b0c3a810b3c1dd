--- cozmox.errors: the error object every runtime failure returns.
--
-- err.kind     "http" | "timeout" | "network" | "tls" | "decode" | "too_large" | "config"
-- err.message  what went wrong, one line
-- err.status   HTTP status (when a response arrived)
-- err.body     the decoded JSON error body (when there was one)
-- err.snippet  the start of a non-JSON error body, printable
-- err.curl_code, err.method, err.path
-- err.attempts  how many attempts were made (retries included)
-- tostring(err) -> "cozmox: HTTP 404 Not Found: Session not found (GET /session/abc)"
local setmetatable, tostring, type, concat = setmetatable, tostring, type, table.concat
local str_format, str_gsub, str_sub = string.format, string.gsub, string.sub

local _M = {}

local REASONS = {
    [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
    [307] = "Temporary Redirect", [308] = "Permanent Redirect",
    [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required",
    [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
    [406] = "Not Acceptable", [408] = "Request Timeout", [409] = "Conflict",
    [410] = "Gone", [411] = "Length Required", [413] = "Payload Too Large",
    [415] = "Unsupported Media Type", [422] = "Unprocessable Entity",
    [429] = "Too Many Requests", [500] = "Internal Server Error",
    [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable",
    [504] = "Gateway Timeout",
}
_M.REASONS = REASONS

local KIND_LABEL = {
    timeout = "timeout", network = "network error", tls = "TLS error",
    decode = "invalid JSON response", too_large = "response too large",
    config = "configuration error",
}

local mt = {}
mt.__index = mt

function mt.__tostring(e)
    local head
    if e.kind == "http" then
        head = "HTTP " .. tostring(e.status)
        local reason = e.reason
        if reason then head = head .. " " .. reason end
    else
        head = KIND_LABEL[e.kind] or tostring(e.kind)
    end
    local s = "cozmox: " .. head
    if e.message and e.message ~= "" and e.message ~= e.reason then s = s .. ": " .. e.message end
    if e.method and e.path then s = s .. " (" .. e.method .. " " .. e.path .. ")" end
    if e.attempts and e.attempts > 1 then s = s .. " after " .. e.attempts .. " attempts" end
    return s
end

function mt.__concat(a, b)
    return tostring(a) .. tostring(b)
end

_M.mt = mt

--- Is v a cozmox error object?
function _M.is_error(v)
    return type(v) == "table" and getmetatable(v) == mt
end

--- A new error object from a table of fields (kind and message required).
function _M.new(fields)
    return setmetatable(fields, mt)
end

-- Keep a snippet of a non-JSON body printable and short.
local function printable(s)
    s = str_gsub(s, "[%z\1-\31\127-\255]+", " ")
    s = str_gsub(str_gsub(s, "%s+", " "), "^ ?(.-) ?$", "%1")
    if #s > 200 then s = str_sub(s, 1, 200) .. "..." end
    return s
end

--- The error object for a non-2xx response.  body: decoded JSON or nil;
--  snippet: raw start of the body.
function _M.http(status, body, snippet, method, path)
    local reason, message = REASONS[status], nil
    if type(body) == "table" then
        if type(body.error) == "string" then reason = reason or body.error end
        local m = body.message
        if type(m) == "string" then
            message = m
        elseif type(m) == "table" then
            local parts = {}
            for i = 1, #m do parts[i] = tostring(m[i]) end
            message = concat(parts, "; ")
        end
    elseif snippet and snippet ~= "" then
        message = printable(snippet)
    end
    return setmetatable({
        kind = "http", status = status, reason = reason,
        message = message or reason or str_format("HTTP status %d", status),
        body = type(body) == "table" and body or nil,
        snippet = body == nil and snippet and printable(snippet) or nil,
        method = method, path = path,
    }, mt)
end

return _M
