--- A stub name server on 127.0.0.1 for the nginx specs (nginx's resolver
--  reads no /etc/hosts and this machine has no name server).
--
--   lua5.4 spec/support/dns.lua PORT answer NAME=IPV4 ...   answers A queries
--                                                           for NAME, NODATA for
--                                                           other types, NXDOMAIN
--                                                           for other names
--   lua5.4 spec/support/dns.lua PORT silent                 reads queries, never answers
--
-- Prints "ready" once bound; runs until killed.
local socket = require("socket")

local port, mode = tonumber(arg[1]), arg[2]
local names = {}
for i = 3, #arg do
    local name, ip = arg[i]:match("^([^=]+)=(.+)$")
    names[name:lower()] = ip
end

local udp = assert(socket.udp())
assert(udp:setsockname("127.0.0.1", port))
io.stdout:write("ready\n")
io.stdout:flush()

local function u16(s, i) return s:byte(i) * 256 + s:byte(i + 1) end
local function be16(n) return string.char(math.floor(n / 256) % 256, n % 256) end

-- The question's name (dotted, lower-case) and where the question ends.
local function qname(q, i)
    local labels = {}
    while true do
        local len = q:byte(i)
        if not len then return nil end
        if len == 0 then return table.concat(labels, "."):lower(), i + 1 end
        labels[#labels + 1] = q:sub(i + 1, i + len)
        i = i + len + 1
    end
end

while true do
    local q, ip, qport = udp:receivefrom()
    if q and mode == "answer" and #q >= 12 then
        local name, at = qname(q, 13)
        if name and #q >= at + 3 then
            local qtype = u16(q, at)
            local question = q:sub(13, at + 3)
            local addr = names[name]
            local rcode = addr and 0 or 3
            local answers = ""
            local count = 0
            if addr and qtype == 1 then
                local a, b, c, d = addr:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
                answers = "\192\12" .. be16(1) .. be16(1) .. "\0\0\0\60" .. be16(4)
                    .. string.char(tonumber(a), tonumber(b), tonumber(c), tonumber(d))
                count = 1
            end
            local flags = 0x8180 + rcode
            udp:sendto(q:sub(1, 2) .. be16(flags) .. be16(1) .. be16(count) .. be16(0) .. be16(0)
                .. question .. answers, ip, qport)
        end
    end
end
