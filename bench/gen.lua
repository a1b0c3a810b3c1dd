--- bench/gen.lua: the benchmark's documents, generated deterministically.
--
--   lua5.4 bench/gen.lua FIXTURE OUTDIR
--
-- Writes into OUTDIR (all compact JSON, UTF-8):
--   session.json  FIXTURE with the whitespace between tokens removed
--   big.json      that session with 20,000 generated messages (~3.4 MB)
--   numbers.json  rows of integers and floats (~1.2 MB)
--   strings.json  strings full of escapes and non-ASCII text (~1.1 MB)
--   floats.json   GeoJSON-like polygons: coordinates printed with 17
--                 significant digits, e.g. -65.613616999999977 (~2.2 MB)
--   integers.json rows of integers of every size, 64-bit ones included
--                 (~1.5 MB)
-- Same bytes on every run and every Lua version: the only randomness is
-- the LCG below with fixed seeds.

local fixture, outdir = arg[1], arg[2]
assert(fixture and outdir, "usage: lua5.4 bench/gen.lua FIXTURE OUTDIR")

local concat, format = table.concat, string.format

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local function write(name, text)
    local f = assert(io.open(outdir .. "/" .. name, "wb"))
    f:write(text)
    f:close()
end

-- 31-bit LCG (Park-Miller constants, exact in doubles and integers).
local function lcg(seed)
    local state = seed
    return function(n)            -- integer in [1, n]
        state = (state * 48271) % 2147483647
        return state % n + 1
    end
end

--- Remove whitespace outside strings (the document is valid JSON).
local function minify(s)
    local out, n, pos, len = {}, 0, 1, #s
    while pos <= len do
        local i = s:find('["\t\n\r ]', pos)
        if not i then
            n = n + 1; out[n] = s:sub(pos)
            break
        end
        n = n + 1; out[n] = s:sub(pos, i - 1)
        if s:sub(i, i) == '"' then
            local j = i + 1
            while true do
                local k = assert(s:find('["\\]', j), "unterminated string")
                if s:sub(k, k) == "\\" then j = k + 2 else j = k; break end
            end
            n = n + 1; out[n] = s:sub(i, j)
            pos = j + 1
        else
            pos = i + 1
        end
    end
    return concat(out)
end

local session = minify(read(fixture))
write("session.json", session)

-- (b) the big session: the example session, its messages replaced.
local WORDS = {
    "hello", "thanks", "for", "calling", "the", "support", "line", "how", "can", "I", "help",
    "you", "today", "my", "order", "number", "is", "delivery", "was", "late", "again", "and",
    "would", "like", "a", "refund", "please", "let", "me", "check", "that", "account", "sure",
    "one", "moment", "appointment", "on", "Tuesday", "at", "three", "pm", "works", "great",
    "could", "confirm", "your", "email", "address", "it's", "all", "set", "anything", "else",
    "no", "that's", "everything", "have", "nice", "day", "transferring", "now", "billing",
}
local ROLES = { "assistant", "user", "assistant", "user", "bot", "system" }
do
    local rnd = lcg(20231107)
    local msgs = {}
    local t, sfs = 1699334716000, 0
    for i = 1, 20000 do
        local words, len = {}, 0
        local target = 36 + rnd(100)               -- 37..136 characters
        while len < target do
            local w = WORDS[rnd(#WORDS)]
            words[#words + 1] = w
            len = len + #w + 1
        end
        local text = concat(words, " ")
        text = text:sub(1, 1):upper() .. text:sub(2) .. (rnd(4) == 1 and "?" or ".")
        local step = 200 + rnd(4000)              -- milliseconds
        t = t + step
        sfs = sfs + step
        msgs[i] = format('{"role":"%s","message":"%s","time":%d,"secondsFromStart":%.3f}',
            ROLES[(i - 1) % #ROLES + 1], text, t, sfs / 1000 + 0.0005 * rnd(2))
    end
    -- The session's own messages (other "messages" keys are nested in
    -- the assistant): the one array of {role, message, time, ...}.
    local pat = '"messages":%[{"role":[^%]]-"secondsFromStart":[^%]]-%]'
    local a, b = session:find(pat)
    assert(a and not session:find(pat, b + 1), "the session's messages array not found (once) in the fixture")
    write("big.json", session:sub(1, a - 1) .. '"messages":[' .. concat(msgs, ",") .. "]" .. session:sub(b + 1))
end

-- (c) number-heavy: 20,000 rows of mixed integers and floats.
do
    local rnd = lcg(4242)
    local rows = {}
    for i = 1, 20000 do
        rows[i] = format('{"ts":%d,"n":[%d,%d,%.6f,%.4f,%de%d,%d,%.2f,%d]}',
            1699334716000 + i * 37,
            rnd(1000) - 500,
            rnd(2147483646) * 4096 + rnd(4096),      -- above 2^32, below 2^53
            rnd(1000000) / 7,
            -rnd(100000) / 9,
            rnd(9), rnd(30) - 15,
            rnd(65536),
            rnd(100000) / 100,
            i)
    end
    write("numbers.json", '{"series":[' .. concat(rows, ",") .. "]}")
end

-- (d) string-heavy: many escapes, raw UTF-8 and \u escapes (BMP and
-- surrogate pairs).
do
    local rnd = lcg(777)
    local PIECES = {
        "Grüße aus München", "naïve café", "Ελληνικά", "日本語のテキスト", "中文字符", "한국어",
        "русский текст", "العربية", "emoji 😀🎉", "😀",
        [[\n]], [[\t]], [[\"quoted\"]], [[C:\\path\\to\\file]], [[\/]], [[\r\n]], [[\b\f]],
        [[\u00e9t\u00e9]], [[\u00fc\u00df]], [[\u65e5\u672c]], [[\ud83d\ude00]], [[\ud83c\udf89]],
        [[\u0041\u0042]], "plain ascii words", "more text", "x",
    }
    local items = {}
    for i = 1, 9000 do
        local parts = {}
        for j = 1, 4 + rnd(10) do parts[j] = PIECES[rnd(#PIECES)] end
        items[i] = format('{"id":%d,"text":"%s","note":"%s"}', i, concat(parts, " "),
            PIECES[rnd(#PIECES)] .. PIECES[rnd(#PIECES)])
    end
    write("strings.json", "[" .. concat(items, ",") .. "]")
end

-- (e) float-heavy: GeoJSON polygons whose coordinates went through a
-- double and were printed with %.17g (six decimals in, 17 significant
-- digits out: -65.613616999999977), as in the public canada.json.
do
    local rnd = lcg(31337)
    local features = {}
    for i = 1, 60 do
        local ring = {}
        local lon, lat = (rnd(3000000) - 1500000) / 1e4, (rnd(1400000) - 700000) / 1e4
        for j = 1, 1000 do
            lon = lon + (rnd(2001) - 1001) / 1e6
            lat = lat + (rnd(2001) - 1001) / 1e6
            ring[j] = format("[%.17g,%.17g]", lon, lat)
        end
        features[i] = format('{"type":"Feature","properties":{"name":"region %d","id":%d},'
            .. '"geometry":{"type":"Polygon","coordinates":[[%s]]}}', i, i, concat(ring, ","))
    end
    write("floats.json", '{"type":"FeatureCollection","features":[' .. concat(features, ",") .. "]}")
end

-- (f) integer-heavy: 25,000 rows of counters, ids, timestamps and
-- 64-bit values (exact as Lua integers on 5.3+).
do
    local rnd = lcg(9001)
    local rows = {}
    for i = 1, 25000 do
        rows[i] = format("[%d,%d,%d,%d,%d,%d,%d]",
            i,
            rnd(100) - 50,
            rnd(65536),
            1699334716000 + rnd(1000000),
            rnd(2147483646) * 4096 - 4294967296,
            rnd(2147483646) * 2147483647 * (rnd(2) == 1 and 1 or -1),   -- up to ~2^62
            rnd(1000000000))
    end
    write("integers.json", '{"rows":[' .. concat(rows, ",") .. "]}")
end
