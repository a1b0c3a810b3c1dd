-- Session store of the mock API: the nginx shared dict "sessions".
--
-- Key: the session id (decoded, any bytes). Value: the session as JSON text,
-- exactly the bytes the API returns. Values are kept as text, never
-- re-encoded through cjson, so numbers and key order stay as in the fixture.
--
-- Shared by all workers; seeded once in init_by_lua (master process).

local _M = {}

local ngx_shared = ngx.shared
local str_byte, str_format, str_gsub, str_find, str_sub =
  string.byte, string.format, string.gsub, string.find, string.sub

-- Ids seeded at start-up; specs rely on each of them.
_M.SEEDED_IDS = {
  "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f",
  "demo",
  "a b/c",
  "..",
  "ünï/cødé?#&",
}

-- The session the fault routes return.
_M.DEFAULT_ID = "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f"

-- Demo sessions (realistic support calls, for `make demo`, the examples
-- and the cozmox command): a JSON array under the fixtures directory,
-- each element stored as it is written there, under its own "id".
_M.DEMO_FILE = "demo/sessions.json"

local function dict()
  return ngx_shared.sessions
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

-- JSON string literal (with quotes) for s; UTF-8 bytes pass through as they are.
function _M.json_string(s)
  return '"' .. str_gsub(s, '[%c"\\]', function(c)
    return escapes[c] or str_format("\\u%04x", str_byte(c))
  end) .. '"'
end

-- The fixture session with its top-level id set to id. The replacement is
-- textual, on the first `"id": "<string>"`, so every other byte is kept.
function _M.with_id(template, id)
  local s, e = str_find(template, '"id"%s*:%s*"<string>"')
  if not s then
    error('session template has no "id": "<string>" member', 2)
  end
  return str_sub(template, 1, s - 1) .. '"id": ' .. _M.json_string(id) ..
         str_sub(template, e + 1)
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("*a")
  f:close()
  return data
end
_M.read_file = read_file

-- Load the fixture and store one session per seeded id, then the demo
-- sessions. Raises on failure, which makes nginx refuse to start
-- (with-mock.sh then prints the log).
function _M.seed(fixtures_dir)
  local path = fixtures_dir .. "/session.json"
  local template, err = read_file(path)
  if not template then
    error("mock: cannot read " .. path .. ": " .. tostring(err))
  end
  _M.template = template
  for _, id in ipairs(_M.SEEDED_IDS) do
    assert(_M.put(id, _M.with_id(template, id)))
    _M.set_order(id, _M.next_seq())
  end
  local demo_path = fixtures_dir .. "/" .. _M.DEMO_FILE
  local demo
  demo, err = read_file(demo_path)
  if not demo then
    error("mock: cannot read " .. demo_path .. ": " .. tostring(err))
  end
  local texts
  texts, err = _M.elements(demo)
  if not texts then error("mock: " .. demo_path .. ": " .. tostring(err)) end
  local cjson = require "cjson.safe"
  local seen = {}
  for _, id in ipairs(_M.SEEDED_IDS) do seen[id] = true end
  for i, text in ipairs(texts) do
    local s = cjson.decode(text)
    if type(s) ~= "table" or type(s.id) ~= "string" or s.id == "" then
      error("mock: " .. demo_path .. ": element " .. i .. " is not a session with an id")
    end
    if seen[s.id] then error("mock: " .. demo_path .. ": duplicate id " .. s.id) end
    seen[s.id] = true
    assert(_M.put(s.id, text))
    _M.set_order(s.id, _M.next_seq())
  end
end

-- Creation order: "order:<id>" -> sequence number in the state dict, the
-- tie-break of the list's sort on createdAt (seeded sessions share one
-- createdAt; so may sessions created within one millisecond).
function _M.next_seq()
  return ngx_shared.state:incr("session_seq", 1, 0)
end

function _M.set_order(id, seq)
  ngx_shared.state:set("order:" .. id, seq)
end

function _M.order(id)
  return ngx_shared.state:get("order:" .. id) or 0
end

-- JSON text of the session, or nil.
function _M.get(id)
  return (dict():get(id))
end

-- Store (create or replace) a session's JSON text.
function _M.put(id, json)
  local ok, err = dict():set(id, json)
  if not ok then return nil, "sessions dict: " .. tostring(err) end
  return true
end

-- Remove a session; true if it existed.
function _M.delete(id)
  local d = dict()
  if d:get(id) == nil then return false end
  d:delete(id)
  ngx_shared.state:delete("order:" .. id)
  return true
end

-- All stored ids (sorted, so listings are stable).
function _M.ids()
  local keys = dict():get_keys(0)
  table.sort(keys)
  return keys
end

------------------------------------------------------------------------
-- JSON text surgery: sessions are edited as text, never re-encoded, so
-- every byte not edited stays as it was (and [] stays [], which the
-- nginx lua-cjson 2.1.0 could not promise: it has no array marker).
------------------------------------------------------------------------

local WS = { [32] = true, [9] = true, [10] = true, [13] = true }

local function skip_ws(s, i)
  while WS[str_byte(s, i)] do i = i + 1 end
  return i
end

-- s:byte(i) is the opening quote; the index after the closing one.
local function skip_string(s, i)
  i = i + 1
  while true do
    local q = str_find(s, '["\\]', i)
    if not q then error("unterminated string") end
    if str_byte(s, q) == 92 then i = q + 2 else return q + 1 end
  end
end

-- The index after the JSON value starting at s:byte(i).
local function skip_value(s, i)
  local c = str_byte(s, i)
  if c == 34 then return skip_string(s, i) end
  if c == 123 or c == 91 then
    local depth = 0
    while true do
      local p = str_find(s, '[][{}"]', i)
      if not p then error("unterminated container") end
      local b = str_byte(s, p)
      if b == 34 then
        i = skip_string(s, p)
      else
        depth = depth + ((b == 123 or b == 91) and 1 or -1)
        i = p + 1
        if depth == 0 then return i end
      end
    end
  end
  return str_find(s, "[,}%]%s]", i) or #s + 1
end

local function scan_members(s)
  local i = skip_ws(s, 1)
  if str_byte(s, i) ~= 123 then error("not an object") end
  i = skip_ws(s, i + 1)
  local list = {}
  if str_byte(s, i) == 125 then return list, i end
  local cjson = require "cjson.safe"
  while true do
    if str_byte(s, i) ~= 34 then error("member name expected") end
    local ke = skip_string(s, i)
    local key = cjson.decode(str_sub(s, i, ke - 1))
    i = skip_ws(s, ke)
    if str_byte(s, i) ~= 58 then error("colon expected") end
    i = skip_ws(s, i + 1)
    local ve = skip_value(s, i)
    list[#list + 1] = { key = key, vs = i, ve = ve - 1, raw = str_sub(s, i, ve - 1) }
    i = skip_ws(s, ve)
    local b = str_byte(s, i)
    if b == 125 then return list, i end
    if b ~= 44 then error("comma or } expected") end
    i = skip_ws(s, i + 1)
  end
end

local function scan_elements(s)
  local i = skip_ws(s, 1)
  if str_byte(s, i) ~= 91 then error("not an array") end
  i = skip_ws(s, i + 1)
  local list = {}
  if str_byte(s, i) == 93 then return list end
  while true do
    local e = skip_value(s, i)
    list[#list + 1] = str_sub(s, i, e - 1)
    i = skip_ws(s, e)
    local b = str_byte(s, i)
    if b == 93 then return list end
    if b ~= 44 then error("comma or ] expected") end
    i = skip_ws(s, i + 1)
  end
end

-- The texts of the elements of a JSON array text (valid JSON expected),
-- byte for byte as they are written. nil, err when s is not an array.
function _M.elements(s)
  local ok, list = pcall(scan_elements, s)
  if not ok then return nil, list end
  return list
end

-- The members of a JSON object text (valid JSON expected), in order:
-- { key = decoded name, raw = value text, vs, ve = its byte span }, and
-- the position of the closing brace.  nil, err when s is not an object.
function _M.members(s)
  local ok, list, close = pcall(scan_members, s)
  if not ok then return nil, list end
  return list, close
end

-- s with each edit { vs, ve, text } applied (spans of s, not overlapping).
function _M.splice(s, edits)
  table.sort(edits, function(a, b) return a.vs > b.vs end)
  for _, e in ipairs(edits) do
    s = str_sub(s, 1, e.vs - 1) .. e.text .. str_sub(s, e.ve + 1)
  end
  return s
end

------------------------------------------------------------------------
-- ISO 8601 (the mock's own code, independent of the client's)
------------------------------------------------------------------------

local floor = math.floor

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy - 719468
end

local MDAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- Epoch milliseconds of an ISO 8601 date or date-time (Z or +-hh:mm; no
-- designator = UTC), or nil.
function _M.parse_iso(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > MDAYS[mo] then return nil end
  if mo == 2 and d == 29 and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return nil end
  local h, mi, sec, off = 0, 0, 0, 0
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[Tt](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, after = tail:match("^:(%d%d)(.*)$")
    if ss then
      sec, tail = tonumber(ss), after
      local frac, zone = tail:match("^%.(%d+)(.*)$")
      if frac then sec, tail = sec + tonumber("0." .. frac), zone end
    end
    if h > 23 or mi > 59 or sec >= 60 then return nil end
    if tail ~= "" and tail ~= "Z" and tail ~= "z" then
      local sign, oh, om = tail:match("^([+-])(%d%d):?(%d%d)$")
      if not sign then return nil end
      off = (tonumber(oh) * 60 + tonumber(om)) * 60
      if sign == "-" then off = -off end
    end
  end
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off) * 1000
end

-- Now as ISO 8601 with milliseconds (the API's form) and as epoch ms.
function _M.now_iso()
  ngx.update_time()
  local now = ngx.now()
  local sec = floor(now)
  local ms = floor((now - sec) * 1000 + 0.5)
  if ms > 999 then ms = 999 end
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. str_format(".%03dZ", ms), sec * 1000 + ms
end

-- A random version-4 UUID.
function _M.new_id()
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = { str_byte(f:read(16), 1, 16) }
  f:close()
  b[7] = b[7] % 16 + 64          -- version 4
  b[9] = b[9] % 64 + 128         -- variant 10
  local hex = str_format(string.rep("%02x", 16), unpack(b))
  return str_format("%s-%s-%s-%s-%s", hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16),
                    hex:sub(17, 20), hex:sub(21, 32))
end

return _M
