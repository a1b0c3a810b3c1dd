--- bench/profile.lua: one codec call on one document, for callgrind.
--
--   valgrind --tool=callgrind --collect-atstart=no \
--     --toggle-collect=cz_json_decode --toggle-collect=json_decode \
--     lua5.4 bench/profile.lua FILE decode|encode [cozmox|cjson] [N]
--
-- Decodes FILE (with cozmox, or with lua-cjson) N times (default 1);
-- "encode" first decodes it with cozmox (untimed by the toggles above
-- when they name the encoders: cz_json_encode, json_encode) and encodes
-- that value N times.  Runs on Lua 5.1-5.4 and LuaJIT.
local file, what, lib, n = arg[1], arg[2], arg[3] or "cozmox", tonumber(arg[4] or "1")
assert(file and (what == "decode" or what == "encode"), "usage: profile.lua FILE decode|encode [cozmox|cjson] [N]")
local f = assert(io.open(file, "rb"))
local text = f:read("*a")
f:close()
local json = require("cozmox.json")
local codec = lib == "cjson" and require("cjson") or json
local v
if what == "decode" then
    for _ = 1, n do v = codec.decode(text) end
else
    local value = json.decode(text)
    for _ = 1, n do v = codec.encode(value) end
end
assert(v ~= nil)
