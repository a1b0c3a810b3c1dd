--- bench/common.lua: helpers of bench/bench.lua and bench/codec.lua
--  (plain Lua 5.1, so that LuaJIT runs them too); loaded with dofile.
local _M = {}

function _M.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

--- contenders rotated: round r starts at the ((r - 1) % #list + 1)-th.
function _M.rotated(list, r)
    local out, n = {}, #list
    for i = 1, n do out[i] = list[(i + r - 2) % n + 1] end
    return out
end

return _M
