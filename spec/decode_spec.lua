-- cozmox.json.decode / decoder: the mapping, limits, errors and streaming.
local json = require("cozmox.json")
local cozmox = require("cozmox")
local util = require("support.util")

local decode, decoder, null, array_mt = json.decode, json.decoder, json.null, json.array_mt
local same, math_type = util.same, util.math_type
local HAS_INTEGERS = math.type ~= nil and math.type(1) == "integer"

local function decode_err(s, opts)
    local ok, err = pcall(decode, s, opts)
    assert.is_false(ok, "expected a decode error for: " .. s:sub(1, 60))
    return err
end

-- Feed s in pieces cut at the given offsets; return value or nil, err.
local function feed_split(s, cuts, opts)
    local d = decoder(opts)
    local from = 1
    for _, cut in ipairs(cuts) do
        local ok, err = d:feed(s:sub(from, cut))
        if not ok then return nil, err end
        from = cut + 1
    end
    local ok, err = d:feed(s:sub(from))
    if not ok then return nil, err end
    return d:finish()
end

describe("cozmox.json.decode mapping", function()
    it("maps objects to plain tables and arrays to tables with array_mt", function()
        local v = decode('{"a":[1,2,{"b":[]}],"e":{}}')
        assert.is_nil(getmetatable(v))
        assert.equal(array_mt, getmetatable(v.a))
        assert.equal(3, #v.a)
        assert.is_nil(getmetatable(v.a[3]))
        assert.equal(array_mt, getmetatable(v.a[3].b))
        assert.is_nil(next(v.a[3].b))
        assert.is_nil(getmetatable(v.e))
        assert.is_nil(next(v.e))
    end)

    it("exposes the same array_mt and null on cozmox and cozmox.json", function()
        assert.equal(cozmox.array_mt, array_mt)
        assert.equal(cozmox.null, null)
        assert.equal(require("cozmox.core").array_mt, array_mt)
    end)

    it("maps null to a light userdata NULL identical to cjson.null", function()
        local cjson = require("cjson")
        local v = decode('[null,{"k":null}]')
        assert.equal(cjson.null, v[1])
        assert.equal(cjson.null, v[2].k)
        assert.equal(null, cjson.null)
        assert.equal("userdata", type(v[1]))
        assert.equal(2, #v) -- null keeps its slot, unlike nil
    end)

    it("maps true and false to booleans and top-level scalars to themselves", function()
        assert.is_true(decode("true"))
        assert.is_false(decode(" false "))
        assert.equal("x", decode('"x"'))
        assert.equal(null, decode("null"))
        assert.equal(42, decode("42"))
    end)

    it("keeps the last of duplicate keys", function()
        local v = decode('{"a":1,"a":2,"b":{"c":1,"c":[3]}}')
        assert.equal(2, v.a)
        assert.same({ 3 }, { v.b.c[1] })
    end)

    it("keeps the last of duplicate keys wherever they fall (batches, escapes, long keys, chunk splits)", function()
        -- Keys with equal length and equal first and last four bytes hash
        -- alike in the decoder; escaped and long keys take other paths;
        -- 150 members cross the decoder's internal batches of 64.
        local names = { "abcdXabcd", "abcdYabcd", "a", "k\\u0041", "kA",
                        "a_key_name_longer_than_thirty_one_bytes", "x",
                        "a_key_name_longer_than_forty_bytes_so_not_cached" }
        local want_of = { ["k\\u0041"] = "kA" }
        local parts, want = {}, {}
        for i = 1, 150 do
            local name = names[(i * 3) % #names + 1]
            parts[#parts + 1] = string.format('"%s":%d', name, i)
            want[want_of[name] or name] = i
        end
        local text = "{" .. table.concat(parts, ",") .. "}"
        local nested = '{"o":' .. text .. ',"o":' .. text .. '}'
        local function check(v)
            local n = 0
            for k, x in pairs(v) do
                n = n + 1
                assert.equal(want[k], x, k)
            end
            assert.equal(7, n)
        end
        check(decode(text))
        check(decode(nested).o)
        for _, step in ipairs({ 1, 3, 7, 64 }) do
            local d = json.decoder()
            for i = 1, #nested, step do assert(d:feed(nested:sub(i, i + step - 1))) end
            check(assert(d:finish()).o)
        end
        assert.equal(2, decode('{"a":1,"b":2,"a":2}').a)
        assert.equal(1, decode('{"a":2,"b":2,"\\u0061":1}').a)
    end)

    it("decodes the example session losslessly", function()
        local s = decode(util.fixture("session.json"))
        assert.equal("active", s.status)
        assert.equal("claude-3-opus-20240229", s.assistant.model.model)
        assert.equal(86400, s.expirationSeconds)
        assert.equal(0.4, s.assistant.transcriber.confidenceThreshold)
        assert.equal(array_mt, getmetatable(s.messages))
    end)
end)

describe("cozmox.json.decode numbers", function()
    it("gives exact integers for every 64-bit integer literal", function()
        if HAS_INTEGERS then
            assert.equal("integer", math.type(decode("86400")))
            assert.equal(9007199254740993, decode("9007199254740993"))
            assert.equal("9007199254740993", tostring(decode("9007199254740993")))
            assert.equal(12345678901234567, decode("12345678901234567"))
            assert.equal(math.mininteger, decode("-9223372036854775808"))
            assert.equal(math.maxinteger, decode("9223372036854775807"))
            assert.equal("integer", math.type(decode("-0")))
            assert.equal(0, decode("-0"))
            local big = decode("[4611686018427387904,-4611686018427387905]")
            assert.equal(4611686018427387904, big[1])
            assert.equal(-4611686018427387905, big[2])
        else
            assert.equal(86400, decode("86400"))
            assert.equal(2 ^ 53, decode("9007199254740993")) -- doubles: nearest is 2^53
        end
    end)

    it("turns integers beyond 64 bits into the nearest float, never saturating", function()
        local v = decode("9223372036854775808")
        assert.equal("float", math_type(v))
        assert.equal(2 ^ 63, v)
        local w = decode("-9223372036854775809")
        assert.equal("float", math_type(w))
        assert.equal(-(2 ^ 63), w)
        assert.equal(1e30, decode("1000000000000000000000000000000"))
        assert.equal(18446744073709551616.0, decode("18446744073709551616"))
        assert.equal(1e300, decode("1" .. string.rep("0", 300)))
    end)

    it("keeps floats as floats, correctly rounded", function()
        assert.equal("float", math_type(decode("1.0")))
        assert.equal("float", math_type(decode("1e2")))
        assert.equal(100.0, decode("1e2"))
        assert.equal(0.1, decode("0.1"))
        assert.equal(-1.5e-7, decode("-1.5E-7"))
        assert.equal(3.141592653589793, decode("3.141592653589793238462643383279"))
        assert.equal(2.2250738585072014e-308, decode("2.2250738585072014e-308"))
        assert.equal(4.9406564584124654e-324, decode("4.9406564584124654e-324"))
        assert.equal(1.7976931348623157e308, decode("1.7976931348623157e308"))
        assert.equal(9007199254740992.0, decode("9007199254740993.0")) -- ties to even
        assert.equal(0.0, decode("1e-400"))
        local nz = decode("-0.0")
        assert.equal(0, nz)
        assert.equal(-math.huge, 1 / nz)
    end)

    it("agrees bit for bit with the C library on 3000 random doubles", function()
        math.randomseed(12345)
        for i = 1, 3000 do
            local m = math.random() * 10 ^ math.random(-30, 30)
            if i % 3 == 0 then m = -m end
            for _, fmt in ipairs({ "%.17g", "%.15g", "%.3e" }) do
                local text = string.format(fmt, m)
                local expect = tonumber(text)
                local got = decode(text)
                assert(got == expect, text .. " decoded to " .. string.format("%.17g", got))
            end
        end
    end)

    it("rejects numbers that overflow to infinity", function()
        assert.matches("number out of range at byte offset 1", decode_err("[1e400]"), 1, true)
        assert.matches("number out of range", decode_err("-1e999"), 1, true)
    end)

    it("does not depend on the C locale (LC_NUMERIC=de_DE)", function()
        local old = os.setlocale(nil, "numeric")
        local set = os.setlocale("de_DE.UTF-8", "numeric") or os.setlocale("de_DE.utf8", "numeric")
        assert.is_not_nil(set, "the de_DE.UTF-8 locale must exist (scripts/deps.sh creates it)")
        local ok, err = pcall(function()
            -- the locale really is active (LuaJIT formats numbers itself)
            if type(jit) == "table" then assert.matches("^de_DE", os.setlocale(nil, "numeric"))
            else assert.equal("1,5", string.format("%.1f", 1.5)) end
            assert.equal(1.5, decode("1.5"))
            assert.equal(0.30000000000000004, decode("0.30000000000000004"))
            assert.equal(1.2345678901234567e-5, decode("1.2345678901234567e-5"))
            assert.equal(123456789.125, decode("123456789.125e0"))
            local v = decode('{"x":[2.5,3.25e3]}')
            assert.equal(2.5, v.x[1])
            assert.equal(3250.0, v.x[2])
            assert.equal("[2.5,0.1]", json.encode(json.array({ 2.5, 0.1 })))
        end)
        os.setlocale(old, "numeric")
        assert(ok, err)
    end)
end)

describe("cozmox.json.decode strings", function()
    it("decodes every escape to UTF-8", function()
        assert.equal('"\\/\b\f\n\r\t', decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
        assert.equal("\0", decode('"\\u0000"'))
        assert.equal("é", decode('"\\u00e9"'))
        assert.equal("€", decode('"\\u20AC"'))
        assert.equal("𝄞", decode('"\\ud834\\udd1e"'))
        assert.equal("😀 ok", decode('"\\uD83D\\uDE00 ok"'))
    end)

    it("passes valid UTF-8 through untouched", function()
        local text = "Grüße, 世界, 😀, ℕ"
        assert.equal(text, decode('"' .. text .. '"'))
    end)

    it("turns unpaired UTF-16 surrogate escapes into U+FFFD", function()
        assert.equal("\239\191\189", decode('"\\ud800"'))
        assert.equal("\239\191\189x", decode('"\\udc00x"'))
        assert.equal("\239\191\189\239\191\189", decode('"\\ud800\\ud800"'))
        assert.equal("\239\191\189\n", decode('"\\ud800\\n"'))
    end)

    -- Text of every kind, as (JSON text, value) pieces, put together into
    -- strings of 0..64 bytes so that runs, escapes and multi-byte
    -- sequences meet the 16-byte blocks of the SSSE3 paths at every
    -- alignment.  A string is followed by 20 more bytes of document, so
    -- the fast paths (which leave the last 16 bytes of the input to the
    -- scalar path) run to its end.
    local PIECES = {
        { "a", "a" }, { "z", "z" }, { "\195\169", "\195\169" }, { "\230\151\165", "\230\151\165" },
        { "\240\159\152\128", "\240\159\152\128" }, { "\\n", "\n" }, { '\\"', '"' }, { "\\\\", "\\" },
        { "\\u00e9", "\195\169" }, { "\\ud83d\\ude00", "\240\159\152\128" }, { "\\u0000", "\0" },
        { "\\/", "/" }, { "\127", "\127" }, { "\\ud800x", "\239\191\189x" },
    }
    local BAD = { "\255", "\128", "\192\175", "\224\128\128", "\237\160\128", "\244\144\128\128",
        "\245\128\128\128", "\226\130", "\240\159\152" }
    local PAD = '","xxxxxxxxxxxxxxxxxxxx"]'

    -- JSON text of exactly len bytes, and its value.
    local function text_of(len, seed)
        local state, j, v, n = seed % 2147483646 + 1, {}, {}, 0
        while n < len do
            state = (state * 48271) % 2147483647
            local p = PIECES[state % #PIECES + 1]
            if n + #p[1] > len then p = PIECES[1] end
            j[#j + 1], v[#v + 1] = p[1], p[2]
            n = n + #p[1]
        end
        return table.concat(j), table.concat(v)
    end

    it("decodes text of 0..64 bytes at every alignment, whole and split at every byte", function()
        for len = 0, 64 do
            for seed = 1, 3 do
                local j, v = text_of(len, seed * 131 + len)
                assert.equal(v, decode('"' .. j .. '"'))
                local doc = '["' .. j .. PAD
                assert.equal(v, decode(doc)[1])
                for cut = 1, #doc - 1 do
                    local r, err = feed_split(doc, { cut })
                    assert(r, err)
                    assert.equal(v, r[1])
                end
            end
        end
    end)

    it("finds invalid UTF-8 at every position of strings of 0..64 bytes", function()
        for len = 0, 64 do
            for pos = 0, len do
                local pre, post = text_of(pos, len * 7 + pos), text_of(len - pos, pos * 5 + len)
                for _, bad in ipairs(BAD) do
                    local want = "cozmox.json.decode: invalid UTF-8 in string at byte offset "
                    assert.equal(want .. (2 + #pre), decode_err('["' .. pre .. bad .. post .. PAD))
                    assert.equal(want .. (1 + #pre), decode_err('"' .. pre .. bad .. post .. '"'))
                end
            end
        end
    end)

    it("finds invalid UTF-8 at every position and every split #slow", function()
        for _, len in ipairs({ 15, 16, 17, 31, 32, 33, 48, 64 }) do
            for pos = 0, len do
                local pre, post = text_of(pos, len + pos), text_of(len - pos, len * pos)
                for _, bad in ipairs({ "\255", "\226\130", "\244\144\128\128" }) do
                    local want = "cozmox.json: invalid UTF-8 in string at byte offset " .. (2 + #pre)
                    local doc = '["' .. pre .. bad .. post .. PAD
                    for cut = 1, #doc - 1 do
                        local r, err = feed_split(doc, { cut })
                        assert.is_nil(r)
                        assert.equal(want, err)
                    end
                end
            end
        end
    end)

    it("rejects invalid UTF-8, raw control characters and bad escapes", function()
        assert.matches("invalid UTF-8 in string at byte offset 2", decode_err('"a\255"'), 1, true)
        assert.matches("invalid UTF-8", decode_err('"\192\175"'), 1, true)        -- overlong '/'
        assert.matches("invalid UTF-8", decode_err('"\237\160\128"'), 1, true)   -- encoded surrogate
        assert.matches("invalid UTF-8", decode_err('"\244\144\128\128"'), 1, true) -- beyond U+10FFFF
        assert.matches("invalid UTF-8", decode_err('"\226\130"'), 1, true)       -- truncated sequence
        assert.matches("control character in string", decode_err('"a\nb"'))
        assert.matches("invalid escape", decode_err('"\\x41"'))
        assert.matches("invalid \\u escape", decode_err('"\\u12G4"'), 1, true)
    end)
end)

describe("cozmox.json.decode errors and limits", function()
    it("reports the byte offset of the problem", function()
        assert.matches("unexpected character ']' %(expected a value%) at byte offset 3", decode_err("[1,]"))
        assert.matches("at byte offset 5", decode_err('{"a" 1}'))
        assert.matches("unexpected end of input %(truncated document%) at byte offset 6", decode_err('{"a":1'))
        assert.matches("empty document", decode_err(""))
        assert.matches("empty document", decode_err("  \n"))
        assert.matches("expected end of input after the document%) at byte offset 3", decode_err("[] x"))
        assert.matches("^cozmox%.json%.decode: ", decode_err("nul"))
    end)

    it("rejects what JSON does not allow", function()
        for _, s in ipairs({ "01", "1.", ".5", "+1", "1e", "--1", "0x10", "NaN", "Infinity",
            "[1,2,]", "{\"a\":1,}", "{a:1}", "'x'", "[1 2]", "{\"a\"}", "tru", "nulll",
            "\239\187\191{}", "[\"a\"\"b\"]", "{\"a\":1}}" }) do
            decode_err(s)
        end
    end)

    it("accepts nesting up to max_depth and rejects one level more", function()
        local ok = decode(string.rep("[", 1000) .. string.rep("]", 1000))
        assert.equal(array_mt, getmetatable(ok))
        assert.matches("nesting deeper than max_depth %(1000%)",
            decode_err(string.rep("[", 1001) .. string.rep("]", 1001)))
        assert.matches("max_depth %(3%)", decode_err('[{"a":[[]]}]', { max_depth = 3 }))
        assert.equal(array_mt, getmetatable(decode('[{"a":[]}]', { max_depth = 3 })[1].a))
    end)

    it("decodes objects nested up to max_depth, whole and streamed", function()
        -- Deep enough that the decoder stores a parent's members early to
        -- bound the Lua stack while the parent's key is the only thing
        -- pending (a review found the key lost there: "table index is nil").
        local s = string.rep('{"a":', 999) .. "1" .. string.rep("}", 999)
        local function depth_of(v)
            local n = 0
            while type(v) == "table" do v, n = v.a, n + 1 end
            assert.equal(1, v)
            return n
        end
        assert.equal(999, depth_of(decode(s)))
        assert.equal(999, depth_of(feed_split(s, { 100, 2000, 3333 })))
    end)

    it("fails cleanly, without a C stack overflow, on absurd nesting", function()
        local deep = string.rep("[", 500000)
        assert.matches("nesting deeper than max_depth", decode_err(deep))
        local d = decoder()
        local ok, err = d:feed(string.rep('{"a":', 200000))
        assert.is_nil(ok)
        assert.matches("nesting deeper", err)
    end)

    it("raises bad argument for wrong argument types", function()
        assert.has_error(function() decode(nil) end)
        assert.matches("bad argument #1", select(2, pcall(decode, {})))
        assert.matches("max_depth", select(2, pcall(decode, "1", { max_depth = 0 })))
        assert.matches("max_depth", select(2, pcall(decode, "1", { max_depth = "x" })))
        assert.matches("max_depth", select(2, pcall(decoder, { max_depth = 1.5 })))
    end)
end)

describe("cozmox.json.decoder (streaming)", function()
    it("feeds and finishes", function()
        local d = decoder()
        assert.is_true(d:feed('{"a":[1,'))
        assert.is_true(d:feed('2.5,"x'))
        assert.is_true(d:feed('y"]}'))
        local v = d:finish()
        assert.is_true(same(v, decode('{"a":[1,2.5,"xy"]}')))
        assert.matches("finished", tostring(d))
    end)

    it("reports a truncated document at finish", function()
        local d = decoder()
        assert.is_true(d:feed('{"a":[1,2'))
        local v, err = d:finish()
        assert.is_nil(v)
        assert.matches("truncated document", err)
        local d2 = decoder()
        assert.is_true(d2:feed('"abc'))
        assert.matches("end of input in string", select(2, d2:finish()))
    end)

    it("keeps failing after an error and refuses input after finish", function()
        local d = decoder()
        local ok, err = d:feed("[1,,")
        assert.is_nil(ok)
        assert.matches("at byte offset 3", err)
        assert.is_nil((d:feed("2]")))
        assert.is_nil((d:finish()))
        local d2 = decoder()
        assert.is_true(d2:feed("[]"))
        assert.is_not_nil(d2:finish())
        local again, err2 = d2:feed("1")
        assert.is_nil(again)
        assert.matches("already finished", err2)
    end)

    it("completes a top-level number only at finish", function()
        local d = decoder()
        assert.is_true(d:feed("12"))
        assert.is_true(d:feed("34"))
        assert.equal(1234, d:finish())
    end)

    it("gives the same result for the example session split at every byte #slow", function()
        local s = util.fixture("session.json")
        local whole = decode(s)
        -- encode() is an exact canonical form here (number subtypes, -0.0,
        -- arrays vs objects); the structural walk runs on every 97th cut.
        local want = json.encode(whole)
        for cut = 0, #s do
            local v, err = feed_split(s, { cut })
            assert(v, err)
            if json.encode(v) ~= want then error("split at " .. cut .. " differs") end
            if cut % 97 == 0 then
                local ok, where = same(whole, v)
                assert(ok, "split at " .. cut .. ": " .. tostring(where))
            end
        end
    end)

    it("gives the same result fed one byte at a time", function()
        local s = util.fixture("session.json")
        local d = decoder()
        for i = 1, #s do assert(d:feed(s:sub(i, i))) end
        assert.is_true(same(decode(s), d:finish()))
    end)

    it("gives the same error message in any split for strings cut short or bad inside", function()
        for _, s in ipairs({ '["\131', '["ab\\u12', '{"k\1', '["\\uD800\\u"]', '["\\u12"]',
                             '["ok", "caf\195', '{"a":"\\uD800\\u1x"}', '"abc' }) do
            local whole = decode_err(s):gsub("^.-cozmox%.json%.decode: ", "")
            for cut = 0, #s do
                local v, err = feed_split(s, { cut })
                assert.is_nil(v)
                assert.equal(whole, (err:gsub("^cozmox%.json: ", "")), string.format("%q split at %d", s, cut))
            end
        end
    end)

    it("reports the same byte offset for an error in any split", function()
        local s = '{"key": [1, 2, "caf\195\169", 3.5e1, tru]}'
        local whole = decode_err(s):match("at byte offset %d+")
        for cut = 0, #s do
            local v, err = feed_split(s, { cut })
            assert.is_nil(v)
            assert.equal(whole, err:match("at byte offset %d+"))
        end
    end)
end)

describe("JSONTestSuite", function()
    local dir = util.spec_dir .. "/fixtures/JSONTestSuite/test_parsing/"
    local files = {}
    for name in io.popen('ls "' .. dir .. '"'):lines() do files[#files + 1] = name end

    it("has the whole corpus", function()
        local n = { y = 0, n = 0, i = 0 }
        for _, f in ipairs(files) do n[f:sub(1, 1)] = n[f:sub(1, 1)] + 1 end
        assert.same({ y = 95, n = 188, i = 35 }, n)
    end)

    it("accepts every y_ file, whole, byte by byte and split at every byte", function()
        local accepted = 0
        for _, f in ipairs(files) do
            if f:sub(1, 2) == "y_" then
                local s = util.read(dir .. f)
                local ok, whole = pcall(decode, s)
                assert(ok, f .. ": " .. tostring(whole))
                accepted = accepted + 1
                local cuts = {}
                for i = 1, #s - 1 do cuts[#cuts + 1] = i end
                local v, err = feed_split(s, cuts)
                assert(v ~= nil, f .. " byte by byte: " .. tostring(err))
                assert(same(whole, v), f .. " byte by byte differs")
                for cut = 0, #s do
                    local w, err2 = feed_split(s, { cut })
                    assert(w ~= nil, f .. " split " .. cut .. ": " .. tostring(err2))
                    assert(same(whole, w), f .. " split " .. cut .. " differs")
                end
            end
        end
        assert.equal(95, accepted)
    end)

    it("rejects every n_ file, whole, byte by byte and split at every byte, with the same message", function()
        local rejected = 0
        for _, f in ipairs(files) do
            if f:sub(1, 2) == "n_" then
                local s = util.read(dir .. f)
                local ok, whole_err = pcall(decode, s)
                assert(not ok, f .. " was accepted")
                rejected = rejected + 1
                -- The same reason at the same offset, however the text arrives.
                local want = tostring(whole_err):gsub("^.-cozmox%.json%.decode: ", "")
                local function check(v, err, how)
                    assert(v == nil, f .. " accepted " .. how)
                    assert.equal(want, (tostring(err):gsub("^cozmox%.json: ", "")), f .. " " .. how)
                end
                local cuts = {}
                for i = 1, #s - 1 do cuts[#cuts + 1] = i end
                local v, err = feed_split(s, cuts)
                check(v, err, "byte by byte")
                if #s < 2000 then
                    for cut = 0, #s do
                        local w, err2 = feed_split(s, { cut })
                        check(w, err2, "when split at " .. cut)
                    end
                end
            end
        end
        assert.equal(188, rejected)
    end)

    it("handles every i_ file without crashing, the same way in any split", function()
        for _, f in ipairs(files) do
            if f:sub(1, 2) == "i_" then
                local s = util.read(dir .. f)
                local ok, whole = pcall(decode, s)
                local cuts = {}
                for i = 1, #s - 1 do cuts[#cuts + 1] = i end
                local v = feed_split(s, cuts)
                assert.equal(ok, v ~= nil, f .. ": streaming disagrees with decode")
                if ok then assert(same(whole, v), f .. " byte by byte differs") end
            end
        end
    end)
end)
