--- A real nginx (lua-nginx-module, LuaJIT) with cozmox loaded, in front
--  of the mock API: spec/nginx/nginx.conf.in and spec/nginx/app.lua.
--  One worker, a free 127.0.0.1 port, its own prefix under a temp dir,
--  stopped by its pid; two stub name servers (spec/support/dns.lua) on
--  free UDP ports, one answering and one silent.
--
--   local nginx = require("support.nginx")
--   local n = nginx.start()    -- n.url, n.prefix
--   local status, body = nginx.get(n, "/nginx/session/demo")  -- body decoded if JSON
--   nginx.error_log(n)
--   nginx.stop(n)
local mock = require("support.mock")
local util = require("support.util")
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")

local _M = {}

_M.root = util.spec_dir:gsub("/spec$", "")

local function udp_port()
    local u = assert(socket.udp())
    assert(u:setsockname("127.0.0.1", 0))
    local _, port = u:getsockname()
    u:close()
    return port
end

local kill = util.kill

function _M.start()
    local out, ok = util.run("make -s -C '" .. _M.root .. "' LUA=luajit")
    assert(ok, "building the C core for LuaJIT failed:\n" .. out)
    local n = {}
    n.dns_port, n.silent_port = udp_port(), udp_port()
    n.dns_pid = util.spawn("dns.lua", n.dns_port, "answer", "mock.test=127.0.0.1", "other.test=127.0.0.1")
    n.silent_pid = util.spawn("dns.lua", n.silent_port, "silent")
    local prefix = os.tmpname()
    os.remove(prefix)
    assert(util.run("mkdir -p '" .. prefix .. "/logs'"))
    n.prefix, n.port = prefix, util.free_port()
    local conf = util.read(_M.root .. "/spec/nginx/nginx.conf.in")
    local is_root = (util.run("id -u")):match("^0") ~= nil
    conf = conf:gsub("@([%u_]+)@", {
        USER = is_root and "user root;" or "", PREFIX = prefix, ROOT = _M.root,
        CA_FILE = mock.ca_file, PORT = tostring(n.port), DNS_PORT = tostring(n.dns_port),
        SILENT_DNS_PORT = tostring(n.silent_port) })
    local f = assert(io.open(prefix .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    local pid = util.run(string.format(
        "nginx -p '%s' -c '%s/nginx.conf' -e '%s/error.log' >'%s/stdout.log' 2>&1 & echo $!",
        prefix, prefix, prefix, prefix))
    n.pid = tonumber(pid:match("%d+"))
    n.url = "http://127.0.0.1:" .. n.port
    for _ = 1, 100 do
        local c = socket.tcp()
        c:settimeout(0.1)
        if c:connect("127.0.0.1", n.port) then
            c:close()
            return n
        end
        c:close()
        socket.sleep(0.05)
    end
    _M.stop(n)
    error("nginx did not start:\n" .. (util.run("cat '" .. prefix .. "/error.log' '" .. prefix .. "/stdout.log'")))
end

function _M.stop(n)
    kill(n.pid)
    kill(n.dns_pid)
    kill(n.silent_pid)
    if n.prefix then util.run("rm -rf '" .. n.prefix .. "'") end
end

--- GET path on the test nginx: status and the body (decoded when JSON).
function _M.get(n, path, timeout)
    local chunks = {}
    http.TIMEOUT = timeout or 60
    local _, status = http.request({ url = n.url .. path, sink = ltn12.sink.table(chunks) })
    local body = table.concat(chunks)
    local ok, v = pcall(require("cjson").decode, body)
    return status, ok and v or body
end

function _M.error_log(n)
    return (util.run("cat '" .. n.prefix .. "/error.log'"))
end

return _M
