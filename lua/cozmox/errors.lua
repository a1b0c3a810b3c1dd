--- cozmox.errors: the error object every runtime failure returns.
--
-- err.kind     "http" | "timeout" | "network" | "tls" | "decode" | "too_large"
--              | "memory" | "config" | "closed"
-- err.message  what went wrong: one printable line
-- err.status   HTTP status (when a response arrived)
-- err.reason   the status's reason phrase (kind "http")
-- err.body     the decoded JSON error body (when there was one)
-- err.snippet  the start of a non-JSON error body, printable
-- err.curl_code, err.method, err.path
-- err.attempts  how many attempts were made (retries included)
-- tostring(err) -> "cozmox: HTTP 404 Not Found: Session not found (GET /session/abc)"
--
-- Text a server controls (messages, reasons, snippets) enters an error
-- only through clean(): control characters are escaped, invalid UTF-8
-- is shown as \xNN, and the length is bounded, so tostring(err) is always
-- one printable line.  A client's scrubber then replaces its token
-- wherever a server echoed it, in every string of the error, its body
-- included.
local setmetatable, getmetatable, tostring, type, pairs, next =
    setmetatable, getmetatable, tostring, type, pairs, next
local concat = table.concat
local str_format, str_gsub, str_sub, str_byte, str_find, str_char, str_rep =
    string.format, string.gsub, string.sub, string.byte, string.find, string.char, string.rep

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
    memory = "out of memory", config = "configuration error", closed = "client closed",
}

-- Kinds a transport gives when the exchange itself failed.
local TRANSPORT_KINDS = { network = true, timeout = true, tls = true, config = true }
_M.TRANSPORT_KINDS = TRANSPORT_KINDS

-- ------------------------------------------------------------ text

local ESC = { ["\r"] = "\\r", ["\n"] = "\\n", ["\t"] = "\\t" }

-- Characters a terminal or log viewer acts on rather than shows: the C1
-- controls (U+0080..U+009F, CSI among them), line and paragraph
-- separators, and the bidirectional overrides and isolates that can make
-- a line read otherwise than it is.  Shown as \u{XXXX}.
local SHOWN_AS_CODE = {}
do
    local function utf8_char(cp)
        if cp < 0x800 then
            return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
        end
        return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    local ranges = { { 0x80, 0x9F }, { 0x061C, 0x061C }, { 0x200E, 0x200F }, { 0x2028, 0x202E }, { 0x2066, 0x2069 } }
    for _, r in ipairs(ranges) do
        for cp = r[1], r[2] do SHOWN_AS_CODE[utf8_char(cp)] = cp end
    end
end

-- Length of the valid UTF-8 sequence at i of s, or nil.
local function utf8_len(s, i)
    local c = str_byte(s, i)
    local n, lo, hi
    lo, hi = 0x80, 0xBF
    if c < 0x80 then return 1
    elseif c >= 0xC2 and c <= 0xDF then n = 1
    elseif c >= 0xE0 and c <= 0xEF then
        n = 2
        if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
        n = 3
        if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else return nil end
    for k = 1, n do
        local b = str_byte(s, i + k)
        if not b or b < lo or b > hi then return nil end
        lo, hi = 0x80, 0xBF
    end
    return n + 1
end

--- s as one printable line of at most max bytes (default 512): control
--  characters escaped (\r, \n, \t, \xNN), invalid UTF-8 as \xNN, the
--  rest kept; longer text is cut at a character and ends with "...".
function _M.clean(s, max)
    if type(s) ~= "string" then s = tostring(s) end
    max = max or 512
    if not str_find(s, "[%z\1-\31\127-\255]") then
        if #s <= max then return s end
        return str_sub(s, 1, max) .. "..."
    end
    local out, n, i, len = {}, 0, 1, #s
    while i <= len do
        local c = str_byte(s, i)
        local piece, step
        if c < 32 or c == 127 then
            piece, step = ESC[str_char(c)] or str_format("\\x%02X", c), 1
        elseif c < 128 then
            piece, step = str_char(c), 1
        else
            step = utf8_len(s, i)
            if step then
                piece = str_sub(s, i, i + step - 1)
                local cp = SHOWN_AS_CODE[piece]
                if cp then piece = str_format("\\u{%04X}", cp) end
            else
                piece, step = str_format("\\x%02X", c), 1
            end
        end
        if n + #piece > max then
            out[#out + 1] = "..."
            break
        end
        out[#out + 1] = piece
        n = n + #piece
        i = i + step
    end
    return concat(out)
end
local clean = _M.clean
local redact

-- The start of a non-JSON body (an HTML page; the sink keeps 512
-- bytes, so it may be cut): whitespace and controls folded into single
-- spaces, at most 200 bytes.
local function snippet_text(s, secret)
    s = str_gsub(redact(s, secret, true), "[%z\1-\32\127]+", " ")
    s = str_gsub(s, "^ ", "")
    s = str_gsub(s, " $", "")
    return clean(s, 200)
end

-- ------------------------------------------------------------ secrets

local REDACTED = "[REDACTED]"

-- ASCII lower case, whatever the locale (a pattern's range compares
-- bytes; %u and string.lower ask the C library's locale).  Host names
-- are case-insensitive, so a token may come back in another case (a
-- resolver's message, a server echoing a Host header): redaction
-- matches without case.
local LOWER = {}
for c = 65, 90 do LOWER[str_char(c)] = str_char(c + 32) end
local function lower(s)
    return (str_gsub(s, "[A-Z]", LOWER))
end

-- What redaction looks for, made once per token: the token in lower
-- case, and a pattern matching it in any case ("[sS][eE]%-..."), so
-- that strings without it are rejected without a lower-cased copy.
local last_needle, last_finder
local function finder(needle)
    if needle ~= last_needle then
        local ln = lower(needle)
        -- (byte ranges, not %w/%l: those ask the locale)
        local pat = str_gsub(ln, "[^0-9a-z\128-\255]", "%%%0")
        pat = str_gsub(pat, "[a-z]", function(c) return "[" .. c .. str_char(str_byte(c) - 32) .. "]" end)
        last_needle, last_finder = needle, { ln = ln, pat = pat }
    end
    return last_finder
end

-- Whether s holds f's token, in any case (no copy of s made).
local function has(s, f)
    return #s >= #f.ln and str_find(s, f.pat) ~= nil
end

-- Marks for what was taken out: "[REDACTED]", unless that would let the
-- mark and the text around it spell the token again; then a run of a
-- byte the token does not contain (no occurrence of the token can then
-- touch a mark, so none is left).
local SAFE_MARKS = "*#~=_-.!?+"

local function rebuild(s, ranges, n, mark)
    local out, from = {}, 1
    for k = 1, n do
        out[#out + 1] = str_sub(s, from, ranges[k][1] - 1)
        out[#out + 1] = mark
        from = ranges[k][2] + 1
    end
    out[#out + 1] = str_sub(s, from)
    return concat(out)
end

-- s with every occurrence of needle (in any case, overlapping ones too)
-- taken out, each run of them replaced by one mark; when s was cut (cut
-- true), also a start of needle it ends with (4 bytes or more).
function redact(s, needle, cut)
    if needle == nil or needle == "" then return s end
    local f = finder(needle)
    local ln = f.ln
    local hit = has(s, f)
    if not hit and not (cut and #s >= 4) then return s end
    local ls = lower(s)
    local ranges, n = {}, 0
    local i = hit and str_find(ls, ln, 1, true)
    while i do
        local j = i + #ln - 1
        if n > 0 and i <= ranges[n][2] + 1 then ranges[n][2] = j
        else n = n + 1; ranges[n] = { i, j } end
        i = str_find(ls, ln, i + 1, true)
    end
    if cut then
        for k = math.min(#ln - 1, #ls), 4, -1 do
            if str_sub(ls, -k) == str_sub(ln, 1, k) then
                local i0 = #ls - k + 1
                if n > 0 and i0 <= ranges[n][2] + 1 then ranges[n][2] = #ls
                else n = n + 1; ranges[n] = { i0, #ls } end
                break
            end
        end
    end
    if n == 0 then return s end
    local out = rebuild(s, ranges, n, REDACTED)
    if not str_find(lower(out), ln, 1, true) then return out end
    for k = 1, #SAFE_MARKS do
        local c = str_sub(SAFE_MARKS, k, k)
        if not str_find(ln, c, 1, true) then return rebuild(s, ranges, n, str_rep(c, 10)) end
    end
    out = rebuild(s, ranges, n, "")
    return str_find(lower(out), ln, 1, true) and "" or out
end
local function contains(s, needle)
    return has(s, finder(needle))
end
_M.redact = redact

-- Every string of a decoded body (keys and values), redacted in place,
-- however deep (a walk with its own stack: decoded JSON has no cycles).
local function redact_tree(root, needle)
    local stack, n = { root }, 1
    while n > 0 do
        local v = stack[n]
        stack[n] = nil
        n = n - 1
        local renames
        for k, x in next, v do
            if type(x) == "string" then
                local y = redact(x, needle)
                if y ~= x then v[k] = y end
            elseif type(x) == "table" then
                n = n + 1
                stack[n] = x
            end
            if type(k) == "string" and contains(k, needle) then
                renames = renames or {}
                renames[k] = true
            end
        end
        if renames then
            for k in pairs(renames) do
                v[redact(k, needle)], v[k] = v[k], nil
            end
        end
    end
end

-- Server text as error text: the secret redacted first (so no cut can
-- leave part of it), then made one printable line.
local function text(s, secret, max, cut)
    return clean(redact(s, secret, cut), max)
end

-- ------------------------------------------------------------ objects

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
local new = _M.new

--- The error object for a non-2xx response.  body: the decoded JSON body
--  or nil; snippet: raw start of the body; secret: the client's token,
--  redacted from all of it.
function _M.http(status, body, snippet, method, path, secret)
    local reason, message = REASONS[status], nil
    if type(body) == "table" then
        if secret then redact_tree(body, secret) end
        if type(body.error) == "string" then reason = reason or clean(body.error, 100) end
        local m = body.message
        if type(m) == "string" then
            message = m
        elseif type(m) == "table" then
            local parts = {}
            for i = 1, #m do parts[i] = tostring(m[i]) end
            message = concat(parts, "; ")
        end
    elseif type(body) == "string" then
        message = body
    elseif snippet and snippet ~= "" then
        message = snippet_text(snippet, secret)
    end
    return new({
        kind = "http", status = status, reason = reason,
        message = message and text(message, secret) or reason or str_format("HTTP status %d", status),
        body = type(body) == "table" and body or nil,
        snippet = body == nil and snippet and snippet ~= "" and snippet_text(snippet, secret) or nil,
        method = method, path = path,
    })
end

local function is2xx(status)
    return status ~= nil and status >= 200 and status < 300
end

--- The error object a result record means (nil: a success).  Reads the
--  record only (see cozmox.transport for its fields); secret: the
--  client's token, redacted from everything the server said.
function _M.from_record(rec, method, path, secret)
    local kind, status = rec.kind, rec.status
    if kind and (TRANSPORT_KINDS[kind] or status == nil) then
        return new({ kind = kind, message = text(rec.message or kind, secret), curl_code = rec.code,
            method = method, path = path })
    end
    if kind == "too_large" or kind == "memory" or (kind == "decode" and is2xx(status)) then
        return new({ kind = kind, message = text(rec.message or kind, secret), status = status,
            snippet = kind == "decode" and rec.snippet and rec.snippet ~= "" and snippet_text(rec.snippet, secret)
                or nil,
            method = method, path = path })
    end
    if not is2xx(status) then
        return _M.http(status, rec.value, rec.snippet, method, path, secret)
    end
    return nil
end

return _M
