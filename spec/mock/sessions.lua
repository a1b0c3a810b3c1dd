-- The /session resource of the mock API: list, create, update, delete
-- (GET /session/{id} stays in app.lua). app.lua's header documents the
-- behaviour; validation errors have the API's (NestJS class-validator)
-- shape: 400 {"message": [strings], "error": "Bad Request", "statusCode": 400}.
--
-- Sessions are JSON text in the "sessions" shared dict. A new session is
-- composed as text from the request body's members; an update splices the
-- body's member texts into the stored text. Nothing is re-encoded through
-- cjson (nginx's lua-cjson 2.1.0 turns [] into {}), so numbers, key order
-- and untouched bytes stay exactly as they were.

local cjson = require "cjson.safe"
local store = require "store"

local ngx = ngx
local ngx_req, ngx_shared = ngx.req, ngx.shared
local concat, floor, tonumber, type = table.concat, math.floor, tonumber, type
local str_byte, str_format, str_gsub = string.byte, string.format, string.gsub

local _M = {}

-- Values of a new session not given in the request.
_M.ORG_ID = "6f1c7c1e-2b0a-4f4e-9a53-0d6c2f6b1a77"
_M.DEFAULTS = { status = '"active"', expirationSeconds = "86400" }

-- Body members, in the order a new session lists them (the API's order).
local BODY_ORDER = { "name", "status", "expirationSeconds", "assistantId", "assistant",
                     "messages", "customer", "phoneNumberId", "phoneNumber" }

local function utf8_length(s)
  local _, n = str_gsub(s, "[^\128-\191]", "")
  return n
end

local function first_byte(raw)
  return str_byte(raw, 1)
end

local function integral(v)
  return type(v) == "number" and v == v and floor(v) == v
end

-- member name -> function(decoded value, raw text) -> error message or nil.
-- null passes for every member but status and expirationSeconds.
local CHECKS = {
  name = function(v)
    if type(v) ~= "string" then return "name must be a string" end
    if utf8_length(v) > 40 then return "name must be shorter than or equal to 40 characters" end
  end,
  status = function(v)
    if v ~= "active" and v ~= "completed" then
      return "status must be one of the following values: active, completed"
    end
  end,
  expirationSeconds = function(v)
    if not integral(v) then return "expirationSeconds must be an integer number" end
    if v < 60 then return "expirationSeconds must not be less than 60" end
    if v > 2592000 then return "expirationSeconds must not be greater than 2592000" end
  end,
  assistantId = function(v) if type(v) ~= "string" then return "assistantId must be a string" end end,
  phoneNumberId = function(v) if type(v) ~= "string" then return "phoneNumberId must be a string" end end,
  assistant = function(_, raw) if first_byte(raw) ~= 123 then return "assistant must be an object" end end,
  customer = function(_, raw) if first_byte(raw) ~= 123 then return "customer must be an object" end end,
  phoneNumber = function(_, raw) if first_byte(raw) ~= 123 then return "phoneNumber must be an object" end end,
  messages = function(_, raw) if first_byte(raw) ~= 91 then return "messages must be an array" end end,
}
local NOT_NULLABLE = { status = true, expirationSeconds = true }

local function bad_request(app, messages)
  local quoted = {}
  for i, m in ipairs(messages) do quoted[i] = store.json_string(m) end
  return app.send_json(400, '{"message":[' .. concat(quoted, ",") ..
                            '],"error":"Bad Request","statusCode":400}')
end

-- The request body's members, checked: a map name -> raw value text (the
-- last of duplicates), or nil after sending the 400.
local function body_members(app)
  local text = ngx_req.get_body_data() or "{}"
  local decoded = cjson.decode(text)
  local members = type(decoded) == "table" and store.members(text)
  if not members then
    return nil, app.send_json(400, app.error_body(400, "Request body must be a JSON object"))
  end
  local by_name, last, problems = {}, {}, {}
  for i, m in ipairs(members) do by_name[m.key], last[m.key] = m.raw, i end
  for i, m in ipairs(members) do
    local raw = m.raw
    if last[m.key] == i then
      local check = CHECKS[m.key]
      if not check then
        problems[#problems + 1] = "property " .. m.key .. " should not exist"
      elseif raw ~= "null" or NOT_NULLABLE[m.key] then
        local problem = check(decoded[m.key], raw)
        if problem then problems[#problems + 1] = problem end
      end
    end
  end
  if #problems > 0 then return nil, bad_request(app, problems) end
  return by_name
end

-- POST /session: 201 + the new session.
function _M.create(app)
  local given = body_members(app)
  if not given then return end
  local id = store.new_id()
  local now = store.now_iso()
  local json_string = store.json_string
  local parts = {
    '"id":' .. json_string(id), '"orgId":' .. json_string(_M.ORG_ID),
    '"createdAt":' .. json_string(now), '"updatedAt":' .. json_string(now),
  }
  for _, name in ipairs(BODY_ORDER) do
    local raw = given[name]
    if raw == "null" then raw = nil end
    raw = raw or _M.DEFAULTS[name]
    if raw then parts[#parts + 1] = json_string(name) .. ":" .. raw end
  end
  local text = "{" .. concat(parts, ",") .. "}"
  assert(store.put(id, text))
  store.set_order(id, store.next_seq())
  return app.send_json(201, text)
end

-- PATCH /session/{id}: 200 + the updated session, or 404.
function _M.update(app, id, not_found)
  local text = store.get(id)
  if not text then return app.send_json(404, not_found) end
  local given = body_members(app)
  if not given then return end
  local members, close = store.members(text)
  if not members then return app.send_error(500, "stored session is not an object") end
  local now = store.now_iso()
  given.updatedAt = store.json_string(now)
  local edits, seen, appended = {}, {}, {}
  for _, m in ipairs(members) do
    local raw = given[m.key]
    if raw and not seen[m.key] then
      seen[m.key] = true
      edits[#edits + 1] = { vs = m.vs, ve = m.ve, text = raw }
    end
  end
  for _, name in ipairs(BODY_ORDER) do
    if given[name] and not seen[name] then
      appended[#appended + 1] = store.json_string(name) .. ":" .. given[name]
    end
  end
  if not seen.updatedAt then appended[#appended + 1] = '"updatedAt":' .. given.updatedAt end
  if #appended > 0 then
    edits[#edits + 1] = { vs = close, ve = close - 1,
                          text = (#members > 0 and "," or "") .. concat(appended, ",") }
  end
  text = store.splice(text, edits)
  assert(store.put(id, text))
  return app.send_json(200, text)
end

-- DELETE /session/{id}: 200 + the session as it was, or 404.
function _M.delete(app, id, not_found)
  local text = store.get(id)
  if not text then return app.send_json(404, not_found) end
  store.delete(id)
  return app.send_json(200, text)
end

local STRING_FILTERS = { name = true, assistantId = true, workflowId = true }
local DATE_FILTERS = {}
for _, field in ipairs({ "createdAt", "updatedAt" }) do
  for op, test in pairs({
    Gt = function(a, b) return a > b end, Lt = function(a, b) return a < b end,
    Ge = function(a, b) return a >= b end, Le = function(a, b) return a <= b end,
  }) do
    DATE_FILTERS[field .. op] = { field = field, test = test }
  end
end

-- With /__fail armed for this method: the status this /session request
-- must fail with (after letting `skip` requests through), else nil.
function _M.failure(method)
  local state = ngx_shared.state
  local p = "fail:" .. method .. ":"
  if (state:get(p .. "count") or 0) <= 0 then return nil end
  if state:incr(p .. "skip", -1, 0) >= 0 then return nil end
  state:incr(p .. "count", -1, 0)
  return state:get(p .. "status") or 500
end

-- GET /session: a page of the stored sessions.
function _M.list(app)
  local args = ngx_req.get_uri_args(200)
  local problems = {}
  local page, limit, order = 1, 100, "DESC"
  local filters, dates = {}, {}
  for k, v in pairs(args) do
    if type(v) ~= "string" then
      problems[#problems + 1] = k .. " must be a string"        -- repeated, or without "="
    elseif k == "page" or k == "limit" then
      local n = tonumber(v)
      if not integral(n) then
        problems[#problems + 1] = k .. " must be an integer number"
      elseif n < 1 then
        problems[#problems + 1] = k .. " must not be less than 1"
      elseif k == "limit" and n > 1000 then
        problems[#problems + 1] = "limit must not be greater than 1000"
      elseif k == "page" then
        page = n
      else
        limit = n
      end
    elseif k == "sortOrder" then
      if v ~= "ASC" and v ~= "DESC" then
        problems[#problems + 1] = "sortOrder must be one of the following values: ASC, DESC"
      end
      order = v
    elseif STRING_FILTERS[k] then
      filters[k] = v
    elseif DATE_FILTERS[k] then
      local ms = store.parse_iso(v)
      if not ms then
        problems[#problems + 1] = k .. " must be a valid ISO 8601 date string"
      else
        dates[#dates + 1] = { field = DATE_FILTERS[k].field, test = DATE_FILTERS[k].test, ms = ms }
      end
    else
      problems[#problems + 1] = "property " .. k .. " should not exist"
    end
  end
  if #problems > 0 then
    table.sort(problems)
    return bad_request(app, problems)
  end

  local matches = {}
  for _, id in ipairs(store.ids()) do
    local text = store.get(id)
    local s = text and cjson.decode(text)
    if type(s) == "table" then
      local ok = true
      for k, want in pairs(filters) do
        if s[k] ~= want then ok = false; break end
      end
      local created = store.parse_iso(s.createdAt) or 0
      for _, d in ipairs(dates) do
        if ok then
          local have = store.parse_iso(s[d.field])
          ok = have ~= nil and d.test(have, d.ms)
        end
      end
      if ok then
        matches[#matches + 1] = { text = text, created = created, seq = store.order(id) }
      end
    end
  end
  table.sort(matches, function(a, b)
    if a.created ~= b.created then return a.created < b.created end
    return a.seq < b.seq
  end)
  local total = #matches
  local results = {}
  local first = (page - 1) * limit
  for i = 1, limit do
    local k = first + i
    if order == "DESC" then k = total - first - i + 1 end
    local m = (k >= 1 and k <= total) and matches[k]
    if not m then break end
    results[i] = m.text
  end
  return app.send_json(200, str_format(
    '{"results":[%s],"metadata":{"itemsPerPage":%d,"totalItems":%d,"currentPage":%d}}',
    concat(results, ","), limit, total, page))
end

-- /__fail?method=M&skip=N&count=C&status=S: after N more /session
-- requests with method M (default GET), the next C (default 1) fail with
-- status S (default 500) and an API-shaped error body.
function _M.arm_failures(app)
  local args = ngx_req.get_uri_args()
  local method = type(args.method) == "string" and args.method or "GET"
  local p = "fail:" .. method .. ":"
  local state = ngx_shared.state
  state:set(p .. "skip", tonumber(args.skip) or 0)
  state:set(p .. "count", tonumber(args.count) or 1)
  state:set(p .. "status", tonumber(args.status) or 500)
  return app.send_json(200, '{"ok":true}')
end

return _M
