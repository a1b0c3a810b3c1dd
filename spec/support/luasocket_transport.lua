--- A transport function on plain luasocket TCP, as a user would write
--  one for cozmox.new({ transport = fn }): HTTP/1.1, http:// only, one
--  connection per request.  It keeps the contract of
--  lua/cozmox/transport/custom.lua: it honours req.deadline (every socket
--  call gets what is left, luasocket's "t" mode bounding the whole call),
--  returns nil, err when no response came (err "timeout" on a timeout),
--  and status, headers, reader otherwise, where reader() returns the next
--  chunk, nil at the end, or nil, err when the body broke off.
local socket = require("socket")
local core = require("cozmox.core")
local parse_url = require("cozmox.transport").parse_url

local function left(deadline)
    return math.max(0.001, deadline - core.now())
end

return function(req)
    local scheme, host, port, target = parse_url(req.url)
    if scheme ~= "http" then return nil, "this transport speaks http:// only" end
    local deadline = req.deadline
    local sock = socket.tcp()
    sock:settimeout(math.min(left(deadline), req.connect_timeout), "t")
    local ok, err = sock:connect(host == "localhost" and "127.0.0.1" or host, port)
    if not ok then
        sock:close()
        return nil, err
    end
    local lines = { req.method .. " " .. target .. " HTTP/1.1", "Host: " .. host .. ":" .. port, "Connection: close" }
    for k, v in pairs(req.headers) do lines[#lines + 1] = k .. ": " .. v end
    if req.body then lines[#lines + 1] = "Content-Length: " .. #req.body end
    sock:settimeout(left(deadline), "t")
    ok, err = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (req.body or ""))
    if not ok then
        sock:close()
        return nil, err
    end
    local function line()
        sock:settimeout(left(deadline), "t")
        return sock:receive("*l")
    end
    local status_line, serr = line()
    if not status_line then
        sock:close()
        return nil, serr
    end
    local status = tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
    if not status then
        sock:close()
        return nil, "bad status line"
    end
    local headers = {}
    while true do
        local h, herr = line()
        if not h then
            sock:close()
            return nil, herr
        end
        if h == "" then break end
        -- name, then the value trimmed byte by byte (linear: "(.-)%s*$" is not)
        local n, rest = h:match("^([^:]+):(.*)$")
        local v
        if rest then
            local i, j = 1, #rest
            while i <= j and (rest:byte(i) == 32 or rest:byte(i) == 9) do i = i + 1 end
            while j >= i and (rest:byte(j) == 32 or rest:byte(j) == 9) do j = j - 1 end
            v = rest:sub(i, j)
        end
        if n then
            n = n:lower()
            headers[n] = headers[n] and (headers[n] .. ", " .. v) or v
        end
    end
    local chunked = (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) ~= nil
    local length = tonumber(headers["content-length"] or "")
    local done, chunk_left = false, 0
    local function finish(...)
        done = true
        sock:close()
        return ...
    end
    local function read(n)
        sock:settimeout(left(deadline), "t")
        local data, rerr, partial = sock:receive(n)
        if data then return data end
        if partial and partial ~= "" then return partial, rerr end
        return nil, rerr
    end
    local reader
    if req.method == "HEAD" or status == 204 or status == 304 then
        reader = function() return finish(nil) end
    elseif chunked then
        reader = function()
            if done then return nil end
            if chunk_left == 0 then
                local size_line, lerr = line()
                if not size_line then return finish(nil, lerr) end
                local hex = size_line:match("^(%x+)")
                if not hex or #hex > 12 then return finish(nil, "bad chunk size") end
                chunk_left = tonumber(hex, 16)
                if chunk_left == 0 then return finish(nil) end
            end
            local data, rerr = read(math.min(chunk_left, 8192))
            if not data then return finish(nil, rerr) end
            chunk_left = chunk_left - #data
            if rerr then return finish(nil, rerr) end
            if chunk_left == 0 and line() ~= "" then return finish(nil, "no CRLF after a chunk") end
            return data
        end
    else
        local remaining, pending = length, nil
        reader = function()
            if pending then return finish(nil, pending) end
            if done then return nil end
            if remaining == 0 then return finish(nil) end
            local data, rerr = read(remaining and math.min(remaining, 8192) or 8192)
            if rerr == "closed" and remaining == nil then rerr = nil end -- the end of a close-delimited body
            if not data then
                if rerr then return finish(nil, rerr) end
                return finish(nil)
            end
            if remaining then remaining = remaining - #data end
            pending = rerr
            return data
        end
    end
    return status, headers, reader
end
