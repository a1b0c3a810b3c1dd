--- bench/codec.lua: the DECODE and ENCODE rows of `make bench`, on one runtime.
--
--   lua5.4 bench/codec.lua DATA_DIR ROUNDS      (or luajit, lua5.1 ...)
--
-- Run by bench/bench.lua once per runtime (Lua 5.4 and LuaJIT), in its
-- own process; prints one line per round, case and contender:
--   sample <decode|encode> <doc> <contender> <seconds per call>
-- and nothing else on stdout.  Plain Lua 5.1 so that LuaJIT runs it.
--
-- Method (the same as the rest of the bench): one untimed warm-up call
-- of everything, then ROUNDS rounds; in each round every contender of a
-- case runs its share in 4 slices, contender after contender, the order
-- rotated on every slice.  os.clock (process CPU time); a full GC before
-- each timed slice.  Encode: every contender encodes the same Lua value,
-- the one cozmox.json.decode gives (what an application holds); lua-cjson
-- runs with its defaults (14 significant digits, so it loses precision).
local data_dir, rounds = arg[1], tonumber(arg[2] or "7")
local common = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local read, rotated = common.read, common.rotated
assert(data_dir and rounds, "usage: codec.lua DATA_DIR ROUNDS")

local json = require("cozmox.json")
local cjson = require("cjson")
local dkjson = require("dkjson")
local os_clock, collect, ceil = os.clock, collectgarbage, math.ceil

local DOCS = { "a", "b", "c", "d", "e", "f" }
local FILES = { a = "session.json", b = "big.json", c = "numbers.json", d = "strings.json",
    e = "floats.json", f = "integers.json" }


local dk_decode = dkjson.decode
local CONTENDERS = {
    { key = "cozmox", decode = json.decode, encode = json.encode, budget = 16e6, min = 3 },
    { key = "cjson", decode = cjson.decode, encode = cjson.encode, budget = 16e6, min = 3 },
    -- dkjson (no LPeg) is ~20-50x slower: fewer iterations, same method;
    -- decode only (its encoder refuses cozmox.null, a light userdata).
    { key = "dkjson", decode = function(s) return (dk_decode(s)) end, budget = 0.5e6, min = 1 },
}

local texts, values = {}, {}
for _, d in ipairs(DOCS) do
    texts[d] = read(data_dir .. "/" .. FILES[d])
    values[d] = json.decode(texts[d])
end

local function iterations(c, d)
    return math.max(c.min, ceil(c.budget / #texts[d]))
end

local function time_calls(fn, arg1, n)
    collect("collect")
    local r
    local t0 = os_clock()
    for _ = 1, n do r = fn(arg1) end
    local dt = os_clock() - t0
    if r == nil then error("codec returned nil") end
    return dt
end


for _, d in ipairs(DOCS) do
    for _, c in ipairs(CONTENDERS) do
        time_calls(c.decode, texts[d], 1)
        if c.encode then time_calls(c.encode, values[d], 1) end
    end
end

local SLICES = 4
local out = {}
for r = 1, rounds do
    for _, op in ipairs({ "decode", "encode" }) do
        for _, d in ipairs(DOCS) do
            local input = op == "decode" and texts[d] or values[d]
            local secs, done, list = {}, {}, {}
            for _, c in ipairs(CONTENDERS) do
                if c[op] then list[#list + 1] = c end
                secs[c.key], done[c.key] = 0, 0
            end
            for sl = 1, SLICES do
                for _, c in ipairs(rotated(list, r + sl)) do
                    local all = iterations(c, d)
                    local k = math.min(all - done[c.key], ceil(all / SLICES))
                    if k > 0 then
                        secs[c.key] = secs[c.key] + time_calls(c[op], input, k)
                        done[c.key] = done[c.key] + k
                    end
                end
            end
            for _, c in ipairs(list) do
                out[#out + 1] = string.format("sample %s %s %s %.9g", op, d, c.key, secs[c.key] / done[c.key])
            end
        end
    end
    io.stderr:write(string.format("bench: %s: codec round %d/%d\n", jit and jit.version or _VERSION, r, rounds))
end
io.write(table.concat(out, "\n"), "\n")
