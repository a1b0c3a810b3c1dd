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

-- Load the fixture and store one session per seeded id. Raises on failure,
-- which makes nginx refuse to start (with-mock.sh then prints the log).
function _M.seed(fixtures_dir)
  local path = fixtures_dir .. "/session.json"
  local template, err = read_file(path)
  if not template then
    error("mock: cannot read " .. path .. ": " .. tostring(err))
  end
  _M.template = template
  for _, id in ipairs(_M.SEEDED_IDS) do
    assert(_M.put(id, _M.with_id(template, id)))
  end
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
  return true
end

-- All stored ids (sorted, so listings are stable).
function _M.ids()
  local keys = dict():get_keys(0)
  table.sort(keys)
  return keys
end

return _M
