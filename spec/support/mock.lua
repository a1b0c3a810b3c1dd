-- Where the specs find the mock API that scripts/with-mock.sh started.
--
--   local mock = require "support.mock"
--   mock.base_url, mock.token, mock.https_url, mock.ca_file, mock.fixtures
--   mock.last_request()   -- what the mock last received on /session or /fault
--   mock.fixture(name)    -- bytes of spec/fixtures/<name>
--
-- Requiring it outside with-mock.sh raises an error that says so.

local ENV = {
  base_url  = "COZMOX_BASE_URL",
  token     = "COZMOX_TOKEN",
  https_url = "COZMOX_TEST_HTTPS_URL",
  ca_file   = "COZMOX_TEST_CA_FILE",
  fixtures  = "COZMOX_TEST_FIXTURES",
}

local M = {}

local missing = {}
for field, var in pairs(ENV) do
  local v = os.getenv(var)
  if v == nil or v == "" then
    missing[#missing + 1] = var
  else
    M[field] = v
  end
end
if #missing > 0 then
  table.sort(missing)
  error("support.mock: " .. table.concat(missing, ", ") .. " not set; " ..
        "run specs through scripts/with-mock.sh / make test", 2)
end

-- GET path on the mock's HTTP port with luasocket. Returns body, status,
-- headers (lower-case names), or nil, err.
function M.get(path, headers)
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local chunks = {}
  local ok, status, resp_headers = http.request({
    url = M.base_url .. path,
    headers = headers,
    sink = ltn12.sink.table(chunks),
  })
  if not ok then return nil, status end
  return table.concat(chunks), status, resp_headers
end

-- The request the mock last received on a /session or /fault route:
-- { seq, method, request_uri (raw), headers = { [lower-case name] = value
-- or array of values }, body = string or nil }.
function M.last_request()
  local body, status = M.get("/__last_request")
  if not body then error("support.mock: /__last_request: " .. tostring(status), 2) end
  if status ~= 200 then error("support.mock: /__last_request: HTTP " .. status .. ": " .. body, 2) end
  return require("cjson").decode(body)
end

-- Put the mock back to its start-up state (sessions, counters, last request).
function M.reset()
  local body, status = M.get("/__reset")
  if status ~= 200 then error("support.mock: /__reset: " .. tostring(body or status), 2) end
end

-- How many /fault requests carried ?key=K (attempts, retries included).
function M.hits(key)
  local body, status = M.get("/__hits?key=" .. key)
  if status ~= 200 then error("support.mock: /__hits: " .. tostring(body or status), 2) end
  return require("cjson").decode(body).hits
end

-- A cozmox client for the mock: token and base_url filled in unless given.
function M.client(opts)
  opts = opts or {}
  if opts.token == nil then opts.token = M.token end
  if opts.base_url == nil then opts.base_url = M.base_url end
  return require("cozmox").new(opts)
end

-- A fresh key for the counting fault routes.
local key_seq = 0
function M.key(prefix)
  key_seq = key_seq + 1
  return string.format("%s-%d-%d", prefix or "k", os.time(), key_seq) .. tostring(math.random(1e6))
end

-- The bytes of spec/fixtures/<name>.
function M.fixture(name)
  local path = M.fixtures .. "/" .. name
  local f, err = io.open(path, "rb")
  if not f then error("support.mock: " .. err, 2) end
  local data = f:read("*a")
  f:close()
  return data
end

return M
