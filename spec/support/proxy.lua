--- A forward proxy on 127.0.0.1 for the specs: absolute-form HTTP
--  requests ("GET http://host:port/path HTTP/1.1") and CONNECT tunnels.
--
--   lua5.4 spec/support/proxy.lua PORT LOG
--
-- Each request head's first line and its Proxy-Authorization (if any) are
-- appended to LOG, one line each.  Prints "ready" once bound; runs until
-- killed.  One process, socket.select over every connection.
local socket = require("socket")

local port, log_path = tonumber(arg[1]), arg[2]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0)
io.stdout:write("ready\n")
io.stdout:flush()

local function log(line)
    local f = io.open(log_path, "a")
    if f then
        f:write(line, "\n")
        f:close()
    end
end

local heads = {}   -- client socket -> bytes of its request head so far
local peer = {}    -- tunnel end -> the other end

local function close_pair(s)
    local p = peer[s]
    peer[s] = nil
    if p then
        peer[p] = nil
        p:close()
    end
    s:close()
end

local function send_all(s, data)
    s:settimeout(5)
    local ok = s:send(data)
    s:settimeout(0)
    return ok
end

-- A whole request head from c: open the upstream connection and start
-- relaying.
local function start(c, head, rest)
    local line = head:match("^([^\r\n]*)")
    log(line)
    local auth = head:match("\r\n[Pp]roxy%-[Aa]uthorization:%s*([^\r\n]*)")
    if auth then log("Proxy-Authorization: " .. auth) end
    local method, target = line:match("^(%u+) (%S+) HTTP/1%.%d$")
    local host, hport, path
    if method == "CONNECT" then
        host, hport = target:match("^%[?([^%]]+)%]?:(%d+)$")
    elseif target then
        host, hport, path = target:match("^http://([^/:]+):?(%d*)(/?.*)$")
        hport = hport ~= "" and hport or "80"
        if path == "" then path = "/" end
    end
    if not host then
        send_all(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return c:close()
    end
    -- names of the specs: localhost and *.test are this machine
    if host == "localhost" or host:match("%.test$") then host = "127.0.0.1" end
    local up = socket.tcp()
    up:settimeout(3)
    if not up:connect(host, tonumber(hport)) then
        send_all(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return c:close()
    end
    up:settimeout(0)
    peer[c], peer[up] = up, c
    if method == "CONNECT" then
        send_all(c, "HTTP/1.1 200 Connection established\r\n\r\n")
    else
        -- origin-form request line, one request per connection (so every
        -- request head passes here and is logged)
        local fields = head:sub(#line + 1):gsub("\r\n[Cc]onnection:[^\r\n]*", "")
        head = method .. " " .. path .. " HTTP/1.1\r\nConnection: close" .. fields
        send_all(up, head)
    end
    if rest ~= "" then send_all(up, rest) end
end

while true do
    local reads = { server }
    for s in pairs(heads) do reads[#reads + 1] = s end
    for s in pairs(peer) do reads[#reads + 1] = s end
    local ready = socket.select(reads, nil, 1)
    for _, s in ipairs(ready) do
        if s == server then
            local c = server:accept()
            if c then
                c:settimeout(0)
                heads[c] = ""
            end
        elseif heads[s] then
            local data, err, partial = s:receive(8192)
            local got = heads[s] .. (data or partial or "")
            local at = got:find("\r\n\r\n", 1, true)
            if at then
                heads[s] = nil
                start(s, got:sub(1, at + 3), got:sub(at + 4))
            elseif err == "closed" then
                heads[s] = nil
                s:close()
            else
                heads[s] = got
            end
        elseif peer[s] then
            local data, err, partial = s:receive(8192)
            local piece = data or partial
            if piece and piece ~= "" and not send_all(peer[s], piece) then
                close_pair(s)
            elseif err == "closed" then
                close_pair(s)
            end
        end
    end
end
