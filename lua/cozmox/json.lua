--- cozmox.json: the C core's streaming JSON codec.
--
--   decode(str [, opts]) -> value          raises "... at byte offset N"
--   decoder([opts]) -> d; d:feed(chunk) -> true | nil, err; d:finish() -> value | nil, err
--   encode(value [, opts]) -> string       raises on NaN/inf, cycles, bad keys
--     opts: { sort_keys = true } members in byte-wise key order (reproducible
--           output); { indent = 2 | "\t" } one member per line, indented
--
-- opts: { max_depth = 1000 }.  Arrays carry `array_mt`; `null` is the
-- same value as cjson.null.
local core = require("cozmox.core")

local _M = {
    decode = core.decode,
    decoder = core.decoder,
    encode = core.encode,
    null = core.null,
    array_mt = core.array_mt,
}

--- A new empty JSON array (a table carrying array_mt).
function _M.array(t)
    return setmetatable(t or {}, core.array_mt)
end

return _M
