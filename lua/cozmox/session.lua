--- cozmox.session: the Session resource, bound to a client, and the
--  helper methods every returned session carries.
--
--   client.session.get(id)           -> session | nil, err   GET    /session/{id}
--   client.session.get_many(ids [, { concurrency = 8 }]) -> results, errors, failed (one entry per id)
--   client.session.list([params])    -> page | nil, err      GET    /session
--   client.session.each([params])    -> iterator: session, n, total (raises the error object)
--   client.session.create(body)      -> session | nil, err   POST   /session
--   client.session.update(id, body)  -> session | nil, err   PATCH  /session/{id}
--   client.session.delete(id)        -> session | nil, err   DELETE /session/{id}
--
-- Arguments are checked before any request: a wrong one raises
-- "bad argument #N to '<fn>' (...)" naming the field or param.  Failures
-- of the network or the server return nil, err (see cozmox.errors);
-- each() raises that err object instead, as a for loop cannot return it.
-- POST and PATCH are never retried (not idempotent); GET and DELETE are.
--
-- Sessions stay plain tables: `pairs` sees only the API's fields.  The
-- helpers (s:is_active(), s:transcript(), ...) come through a metatable
-- whose __index is _M.methods, so an API field with a helper's name wins
-- over the helper; _M.methods.<name>(s) still reaches the helper then.
local core = require("cozmox.core")
local json = require("cozmox.json")
local time = require("cozmox.time")
local errors = require("cozmox.errors")

local type, error, pairs, ipairs, tostring, rawget = type, error, pairs, ipairs, tostring, rawget
local setmetatable, getmetatable, next = setmetatable, getmetatable, next
local floor, huge = math.floor, math.huge
local str_format, str_gsub, concat = string.format, string.gsub, table.concat
local os_time = os.time
local escape_segment, encode = core.escape_segment, core.encode
local null, array_mt = json.null, json.array_mt

local _M = {}

-- The functions every bound resource has, in the order they are documented.
-- init.lua forwards each of them from cozmox.session to the default client.
_M.FUNCTIONS = { "get", "get_many", "list", "each", "create", "update", "delete" }

-- The API's bounds (see the API reference of Session).
_M.NAME_MAX = 40
_M.EXPIRATION_MIN = 60
_M.EXPIRATION_MAX = 2592000
_M.DEFAULT_EXPIRATION = 86400
_M.STATUSES = { active = true, completed = true }

local function argerror(n, fname, msg, level)
    error(str_format("bad argument #%d to '%s' (%s)", n, fname, msg), level + 1)
end

local function typename(v)
    if v == null then return "null" end
    return type(v)
end

-- A value for an error message: strings quoted, numbers as they are.
local function describe(v)
    if v == null then return "null" end
    local t = type(v)
    if t == "string" then return v == "" and "empty string" or str_format("%q", v) end
    if t == "number" then return tostring(v) end
    return t
end

--- Raise the standard "bad argument" error unless id is a non-empty string.
function _M.check_id(id, fname, argn)
    if type(id) ~= "string" or id == "" then
        error(("bad argument #%d to '%s' (non-empty string expected, got %s)"):format(
            argn or 1, fname, type(id) == "string" and "empty string" or type(id)), 3)
    end
end
local check_id = _M.check_id

local function is_integer(v, lo, hi)
    return type(v) == "number" and v == v and floor(v) == v and v >= lo and v <= hi
end

-- Code points of a UTF-8 string (bytes that are not continuation bytes).
local function utf8_length(s)
    local _, n = str_gsub(s, "[^\128-\191]", "")
    return n
end

-- A sequence (keys exactly 1..n), or a table marked as a JSON array.
local function is_array(t)
    if getmetatable(t) == array_mt then return true end
    if getmetatable(t) ~= nil then return false end
    local n = 0
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or floor(k) ~= k then return false end
        n = n + 1
    end
    return n == #t
end

-- A JSON object: a table without array_mt that is not a non-empty sequence.
local function is_object(t)
    if type(t) ~= "table" or getmetatable(t) == array_mt then return false end
    return next(t) == nil or not is_array(t)
end

------------------------------------------------------------------------
-- list parameters
------------------------------------------------------------------------

local function check_date(v)
    if type(v) == "number" then
        if v ~= v or v < time.MIN or v > time.MAX then
            return nil, "must be epoch seconds within years 0000..9999"
        end
        return time.format(v)
    end
    if type(v) ~= "string" then return nil, "must be an ISO 8601 string or epoch seconds, got " .. type(v) end
    local ok, err = time.parse(v)
    if not ok then return nil, "must be an ISO 8601 date-time: " .. err end
    return v
end

local function check_text(v)
    if type(v) ~= "string" then return nil, "must be a string, got " .. type(v) end
    return v
end

local function check_ref(v)
    if type(v) ~= "string" or v == "" then return nil, "must be a non-empty string, got " .. describe(v) end
    return v
end

local function check_positive(v)
    if not is_integer(v, 1, 2 ^ 53) then return nil, "must be a positive integer, got " .. describe(v) end
    return v
end

-- Query parameter (API name) -> checker returning the value to send, or
-- nil and what is wrong.  Absent ones are not sent: the API's defaults
-- apply (page 1, sortOrder DESC, limit 100).
_M.LIST_PARAMS = {
    name = check_text,
    assistantId = check_ref,
    workflowId = check_ref,
    page = check_positive,
    sortOrder = function(v)
        if v ~= "ASC" and v ~= "DESC" then return nil, "must be \"ASC\" or \"DESC\", got " .. describe(v) end
        return v
    end,
    limit = check_positive,
    createdAtGt = check_date, createdAtLt = check_date, createdAtGe = check_date, createdAtLe = check_date,
    updatedAtGt = check_date, updatedAtLt = check_date, updatedAtGe = check_date, updatedAtLe = check_date,
}
local LIST_PARAMS = _M.LIST_PARAMS

-- The query table for params (a new table; epoch seconds formatted).
local function list_query(params, fname, level)
    local query = {}
    if params == nil then return query end
    if type(params) ~= "table" then argerror(1, fname, "table expected, got " .. type(params), level + 1) end
    for k, v in pairs(params) do
        local check = LIST_PARAMS[k]
        if check == nil then argerror(1, fname, "unknown param '" .. tostring(k) .. "'", level + 1) end
        local value, why = check(v)
        if value == nil then argerror(1, fname, "param '" .. k .. "' " .. why, level + 1) end
        query[k] = value
    end
    return query
end

------------------------------------------------------------------------
-- create/update bodies
------------------------------------------------------------------------

local function body_string(v)
    if type(v) ~= "string" then return nil, "must be a string, got " .. typename(v) end
    return v
end

local function body_object(v)
    if not is_object(v) then return nil, "must be a table (JSON object), got " .. describe(v) end
    return v
end

-- Body field -> checker returning the value to send, or nil and what is
-- wrong.  cozmox.null is accepted (and sent) for every field but status
-- and expirationSeconds.  Fields not listed here are sent as given: the
-- API decides about them.
_M.BODY_FIELDS = {
    name = function(v)
        if type(v) ~= "string" then return nil, "must be a string, got " .. typename(v) end
        local n = utf8_length(v)
        if n > _M.NAME_MAX then
            return nil, str_format("must be at most %d characters, got %d", _M.NAME_MAX, n)
        end
        return v
    end,
    status = function(v)
        if type(v) ~= "string" or not _M.STATUSES[v] then
            return nil, "must be \"active\" or \"completed\", got " .. describe(v)
        end
        return v
    end,
    expirationSeconds = function(v)
        if not is_integer(v, _M.EXPIRATION_MIN, _M.EXPIRATION_MAX) then
            return nil, str_format("must be an integer in %d..%d, got %s",
                _M.EXPIRATION_MIN, _M.EXPIRATION_MAX, describe(v))
        end
        -- 3600.0 is sent as 3600, not as the float 3600.0.
        return math.tointeger and math.tointeger(v) or v
    end,
    assistantId = body_string,
    assistant = body_object,
    messages = function(v)
        if type(v) ~= "table" or not is_array(v) then
            return nil, "must be an array (a sequence), got " .. describe(v)
        end
        -- An empty plain table would be encoded as {}: send [].
        if next(v) == nil and getmetatable(v) == nil then return json.array() end
        return v
    end,
    customer = body_object,
    phoneNumberId = body_string,
    phoneNumber = body_object,
}
local BODY_FIELDS = _M.BODY_FIELDS
local NOT_NULLABLE = { status = true, expirationSeconds = true }

-- The JSON text of body (checked; the caller's table is not changed).
local function body_json(body, argn, fname, level)
    if not is_object(body) then
        argerror(argn, fname, "table (JSON object) expected, got " .. describe(body), level + 1)
    end
    local out = {}
    for k, v in pairs(body) do
        if type(k) ~= "string" then argerror(argn, fname, "field names must be strings", level + 1) end
        local check = BODY_FIELDS[k]
        if check and not (v == null and not NOT_NULLABLE[k]) then
            local value, why = check(v)
            if value == nil then argerror(argn, fname, "field '" .. k .. "' " .. why, level + 1) end
            v = value
        end
        out[k] = v
    end
    return encode(out)
end

------------------------------------------------------------------------
-- session helpers
------------------------------------------------------------------------

---The helper methods every returned session has (through its metatable).
---@class cozmox.SessionMethods
local methods = {}
_M.methods = methods

local session_mt = { __index = methods, __name = "cozmox.session" }
_M.mt = session_mt

---Give a decoded session its helper methods (returns it).  Tables that
---already have a metatable, and non-tables, are returned as they are.
---@param s table
---@return cozmox.Session
function _M.wrap(s)
    if type(s) == "table" and getmetatable(s) == nil then setmetatable(s, session_mt) end
    return s
end
local wrap = _M.wrap

local function field(s, name)
    local v = rawget(s, name)
    if v == null then return nil end
    return v
end

local function messages_of(s)
    local m = field(s, "messages")
    if type(m) ~= "table" then return nil end
    return m
end

local function timestamp(s, name)
    local v = field(s, name)
    if v == nil then return nil, "session has no " .. name end
    if type(v) ~= "string" then return nil, name .. " is not a string" end
    local t, err = time.parse(v)
    if t == nil then return nil, name .. ": " .. err end
    return t
end

---Whether `status` is "active" (it says nothing about expiry: see is_expired).
---@return boolean
function methods:is_active()
    return field(self, "status") == "active"
end

---createdAt as epoch seconds, or nil, err when it is missing or not ISO 8601.
---@return number? seconds
---@return string? err
function methods:created_at()
    return timestamp(self, "createdAt")
end

---updatedAt as epoch seconds, or nil, err.
---@return number? seconds
---@return string? err
function methods:updated_at()
    return timestamp(self, "updatedAt")
end

---createdAt + expirationSeconds (86400 when absent or null), as epoch
---seconds; nil, err when createdAt is missing or invalid.
---@return number? seconds
---@return string? err
function methods:expires_at()
    local created, err = timestamp(self, "createdAt")
    if created == nil then return nil, err end
    local ttl = field(self, "expirationSeconds")
    if type(ttl) ~= "number" then ttl = _M.DEFAULT_EXPIRATION end
    return created + ttl
end

---Whether `now` (epoch seconds, default os.time()) is at or past expires_at();
---nil, err when that cannot be known.
---@param now? number epoch seconds
---@return boolean? expired
---@return string? err
function methods:is_expired(now)
    if now == nil then
        now = os_time()
    elseif type(now) ~= "number" then
        argerror(1, "is_expired", "epoch seconds expected, got " .. type(now), 2)
    end
    local at, err = methods.expires_at(self)
    if at == nil then return nil, err end
    return now >= at
end

---The messages whose role is `role`, in order (a JSON array; the same
---message tables, not copies).  Empty when there are no messages.
---@param role string
---@return cozmox.Message[]
function methods:messages_by_role(role)
    if type(role) ~= "string" then argerror(1, "messages_by_role", "string expected, got " .. type(role), 2) end
    local out = json.array()
    local m = messages_of(self)
    if m then
        for _, msg in ipairs(m) do
            if type(msg) == "table" and msg.role == role then out[#out + 1] = msg end
        end
    end
    return out
end

---The last message, or nil when there is none.
---@return cozmox.Message?
function methods:last_message()
    local m = messages_of(self)
    if m then return m[#m] end
    return nil
end

-- "m:ss" or "h:mm:ss" of a number of seconds (rounded down).
local function clock(seconds)
    seconds = floor(seconds)
    local h, m, s = floor(seconds / 3600), floor(seconds % 3600 / 60), seconds % 60
    if h > 0 then return str_format("%d:%02d:%02d", h, m, s) end
    return str_format("%02d:%02d", m, s)
end

local TRANSCRIPT_OPTIONS = { timestamps = "boolean", names = "table" }

---The conversation as text: one line per message, `role: text`, lines
---joined by "\n" (no trailing newline; "" without messages).  The text is
---the message's `message` (else its `content`); messages with neither as a
---string are left out; line breaks inside a text become spaces.
---opts.timestamps = true prefixes each line with `[mm:ss] ` (or
---`[h:mm:ss] `) from secondsFromStart (`[--:--] ` when it has none);
---opts.names maps roles to the labels to print (e.g. { user = "Caller" }).
---@param opts? cozmox.TranscriptOptions
---@return string
function methods:transcript(opts)
    local stamps, names = false, nil
    if opts ~= nil then
        if type(opts) ~= "table" then argerror(1, "transcript", "table expected, got " .. type(opts), 2) end
        for k, v in pairs(opts) do
            local want = TRANSCRIPT_OPTIONS[k]
            if want == nil then argerror(1, "transcript", "unknown option '" .. tostring(k) .. "'", 2) end
            if type(v) ~= want then
                argerror(1, "transcript", "option '" .. k .. "' must be a " .. want .. ", got " .. type(v), 2)
            end
        end
        stamps, names = opts.timestamps == true, opts.names
    end
    local lines = {}
    local m = messages_of(self)
    if m then
        for _, msg in ipairs(m) do
            if type(msg) == "table" then
                local text = msg.message
                if type(text) ~= "string" then text = msg.content end
                if type(text) == "string" then
                    local role = type(msg.role) == "string" and msg.role or "unknown"
                    local label = names and names[role] or role
                    local line = tostring(label) .. ": " .. str_gsub(text, "[\r\n]+", " ")
                    if stamps then
                        local at = msg.secondsFromStart
                        local prefix = "[--:--] "
                        if type(at) == "number" and at >= 0 and at < huge then prefix = "[" .. clock(at) .. "] " end
                        line = prefix .. line
                    end
                    lines[#lines + 1] = line
                end
            end
        end
    end
    return concat(lines, "\n")
end

---Which assistant the session uses, following the API's rule for
---`assistant`: "If assistantId is provided, this will be ignored."  So:
---the assistantId and "id" when assistantId is a non-empty string; else
---the inline assistant table and "inline" when there is one; else nil.
---@return (string|cozmox.Assistant)? ref
---@return ("id"|"inline")? kind
function methods:assistant_ref()
    local id = field(self, "assistantId")
    if type(id) == "string" and id ~= "" then return id, "id" end
    local inline = field(self, "assistant")
    if type(inline) == "table" then return inline, "inline" end
    return nil
end

---customer.number (a string), or nil when there is no customer or number.
---@return string?
function methods:customer_number()
    local c = field(self, "customer")
    if type(c) ~= "table" then return nil end
    local n = c.number
    if type(n) == "string" then return n end
    return nil
end

------------------------------------------------------------------------
-- the bound resource
------------------------------------------------------------------------

local function wrapped(s, err)
    if s == nil then return nil, err end
    return wrap(s)
end

-- GET /session with query; the page with its sessions wrapped.
local function fetch_page(api, query, level)
    local path = "/session" .. api.query_string(query, "list")
    local page, err = api.object("GET", path, nil, nil, level)
    if page == nil then return nil, err end
    local results = page.results
    if type(results) ~= "table" or getmetatable(results) ~= array_mt then
        return nil, errors.new({ kind = "decode", method = "GET", path = path,
            message = "expected a list page: an object with a 'results' array" })
    end
    for _, s in ipairs(results) do wrap(s) end
    return page
end

---The resource table of a client (functions called with a dot), built on
---the client's request interface `api` (cozmox.client builds it):
---  api.object(method, path, body, retry_any) -> object | nil, err
---  api.get_many(paths, concurrency, shape) -> results, errors, failed
---  api.query_string(query, fname) -> "?k=v&..."
---  api.as_object(value, status, method, path) -> object | nil, err
---@param api table
---@return cozmox.SessionResource
function _M.bind(api)
    local res = {}

    ---GET /session/{id}: the session as native Lua tables.
    ---@param id string
    ---@return cozmox.Session? session
    ---@return cozmox.Error? err
    function res.get(id)
        check_id(id, "get")
        return wrapped(api.object("GET", "/session/" .. escape_segment(id)))
    end

    ---GET /session/{id} for many ids at once: curl's multi interface
    ---(cosockets inside nginx), at most `concurrency` requests in flight,
    ---each decoded as it arrives, with the retries and limits of get;
    ---`timeout` bounds the whole batch.  results and errors have one entry
    ---per id (both walk with ipairs): results[i] is the session or false,
    ---errors[i] the error or false; failed counts the errors.
    ---@param ids string[]
    ---@param opts? { concurrency?: integer }
    ---@return (cozmox.Session|false)[] results
    ---@return (cozmox.Error|false)[] errors
    ---@return integer failed
    function res.get_many(ids, opts)
        if type(ids) ~= "table" then argerror(1, "get_many", "table of ids expected, got " .. typename(ids), 2) end
        local paths = {}
        for i = 1, #ids do
            local id = ids[i]
            if type(id) ~= "string" or id == "" then
                argerror(1, "get_many", str_format("ids[%d] must be a non-empty string, got %s", i, describe(id)), 2)
            end
            paths[i] = "/session/" .. escape_segment(id)
        end
        local concurrency = 8
        if opts ~= nil then
            if type(opts) ~= "table" then argerror(2, "get_many", "table expected, got " .. typename(opts), 2) end
            for k in pairs(opts) do
                if k ~= "concurrency" then argerror(2, "get_many", "unknown option '" .. tostring(k) .. "'", 2) end
            end
            if opts.concurrency ~= nil then
                if not is_integer(opts.concurrency, 1, 256) then
                    argerror(2, "get_many", "option 'concurrency' must be an integer between 1 and 256", 2)
                end
                concurrency = opts.concurrency
            end
        end
        local as_object = api.as_object
        local results, errs, failed = api.get_many(paths, concurrency, function(v, status, method, path)
            local obj, err = as_object(v, status, method, path)
            if obj then wrap(obj) end
            return obj, err
        end)
        return results, errs, failed -- not a tail call: errors name the caller's line
    end

    ---GET /session: one page { results = {...}, metadata = {...} }.
    ---@param params? cozmox.SessionListParams
    ---@return cozmox.SessionListPage? page
    ---@return cozmox.Error? err
    function res.list(params)
        local page, err = fetch_page(api, list_query(params, "list", 2), 4)
        return page, err -- not a tail call: errors name the caller's line (5.1 counts tail calls)
    end

    ---Every session across pages, fetched page by page as the loop goes:
    ---`for s, n, total in client.session.each(params) do ... end` (n counts
    ---from 1, total is the latest page's totalItems).  Params are checked
    ---now; a failed page raises its cozmox.Error object (use pcall).
    ---@param params? cozmox.SessionListParams
    ---@return fun(): cozmox.Session?, integer?, integer?
    function res.each(params)
        local query = list_query(params, "each", 2)
        local page_no = query.page or 1
        local results, i, n, total, done = nil, 0, 0, nil, false
        return function()
            while true do
                if results and i < #results then
                    i, n = i + 1, n + 1
                    return results[i], n, total
                end
                if done then return nil end
                query.page = page_no
                local page, err = fetch_page(api, query, 4) -- the for loop's line
                if page == nil then
                    done = true
                    error(err, 0)
                end
                results, i = page.results, 0
                local meta = type(page.metadata) == "table" and page.metadata or {}
                local per, count = meta.itemsPerPage, meta.totalItems
                if type(meta.currentPage) == "number" and meta.currentPage ~= page_no then
                    -- a server ignoring `page` would make this loop forever
                    done = true
                    error(errors.new({ kind = "decode", method = "GET", message = str_format(
                        "asked for page %d, the API answered page %s", page_no, tostring(meta.currentPage)) }), 0)
                end
                if type(count) == "number" then total = count end
                if type(per) ~= "number" or per < 1 then per = query.limit or 100 end
                done = #results == 0 or #results < per
                    or (type(count) == "number" and page_no * per >= count)
                page_no = page_no + 1
            end
        end
    end

    ---POST /session (not retried): the created session.
    ---@param body cozmox.SessionBody
    ---@return cozmox.Session? session
    ---@return cozmox.Error? err
    function res.create(body)
        local text = body_json(body, 1, "create", 2)
        return wrapped(api.object("POST", "/session", text))
    end

    ---PATCH /session/{id} (not retried): the updated session.
    ---@param id string
    ---@param body cozmox.SessionBody
    ---@return cozmox.Session? session
    ---@return cozmox.Error? err
    function res.update(id, body)
        check_id(id, "update")
        local text = body_json(body, 2, "update", 2)
        return wrapped(api.object("PATCH", "/session/" .. escape_segment(id), text))
    end

    ---DELETE /session/{id} (retried like GET): the deleted session.
    ---@param id string
    ---@return cozmox.Session? session
    ---@return cozmox.Error? err
    function res.delete(id)
        check_id(id, "delete")
        return wrapped(api.object("DELETE", "/session/" .. escape_segment(id)))
    end

    return res
end

return _M
