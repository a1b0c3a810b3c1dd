-- encode_spec.lua -- the contract of cozmox.core.encode (src/jencode.c).
--
-- Expected texts are exact.  Where Lua versions differ by design (5.1 and
-- LuaJIT have no integer subtype) each runtime's own exact text is given.
-- Strings use decimal escapes so the file also parses on Lua 5.1.

local core = require("cozmox.core")
local encode, null, array_mt = core.encode, core.null, core.array_mt

local HAS_INTEGERS = math.type ~= nil

local function array(t)
  return setmetatable(t, array_mt)
end

-- The error message raised by encode(v); fails if encode succeeds.
local function encode_error(v)
  local ok, err = pcall(encode, v)
  assert.is_false(ok, "encode succeeded where it must raise")
  return err
end

local function key_error(type_name)
  return "cozmox.json.encode: cannot encode table key of type " .. type_name
      .. " (object keys must be strings)"
end

local function utf8_error(byte)
  return "cozmox.json.encode: invalid UTF-8 in string at byte " .. byte
end

-- Tables nested n deep: {{...{}...}} built with wrap(inner) per level.
local function nest(n, wrap)
  local v = wrap(nil)
  for _ = 2, n do v = wrap(v) end
  return v
end

describe("cozmox.core.encode", function()

  describe("arrays", function()
    it("writes plain tables with the keys 1..n as arrays", function()
      assert.are.equal("[1,2,3]", encode({1, 2, 3}))
      assert.are.equal('["a"]', encode({"a"}))
      assert.are.equal('[[1,[2]],{"k":[true]}]', encode({{1, {2}}, {k = {true}}}))
    end)

    it("writes a table with the array metatable as an array, empty included", function()
      assert.are.equal("[]", encode(array({})))
      assert.are.equal("[1,2]", encode(array({1, 2})))
      assert.are.equal('{"a":[]}', encode({a = array({})}))
      assert.are.equal("[[],[[]]]", encode({array({}), {array({})}}))
    end)

    it("writes nil elements of an array-metatable table as null, up to its raw length", function()
      assert.are.equal("[null,2]", encode(array({nil, 2})))
      assert.are.equal("[null,null,3]", encode(array({nil, nil, 3})))
      assert.are.equal("[null]", encode(array({null})))
    end)

    it("ignores non-index keys of an array-metatable table", function()
      assert.are.equal("[1,2]", encode(array({1, 2, x = "ignored", [0] = "ignored"})))
      assert.are.equal("[]", encode(array({x = 1})))
    end)

    it("writes keys 1..n as an array whatever order they were inserted in", function()
      local t = {}
      t[3] = "c"; t[2] = "b"; t[1] = "a"
      assert.are.equal('["a","b","c"]', encode(t))
      local u = {}
      for i = 200, 1, -1 do u[i] = i end
      local parts = {}
      for i = 1, 200 do parts[i] = tostring(i) end
      assert.are.equal("[" .. table.concat(parts, ",") .. "]", encode(u))
    end)

    it("writes a table whose trailing elements were removed as the shorter array", function()
      local t = {1, 2, 3}
      t[3] = nil
      assert.are.equal("[1,2]", encode(t))
      assert.are.equal('["a","b"]', encode({[1.0] = "a", [2] = "b"}))
    end)

    it("writes long arrays exactly", function()
      local t, parts = {}, {}
      for i = 1, 10000 do
        t[i] = i * 3 - 5000
        parts[i] = tostring(i * 3 - 5000)
      end
      assert.are.equal("[" .. table.concat(parts, ",") .. "]", encode(t))
    end)
  end)

  describe("objects", function()
    it("writes an empty plain table as {}", function()
      assert.are.equal("{}", encode({}))
      assert.are.equal('{"a":{}}', encode({a = {}}))
    end)

    it("writes string keys, escaped like strings", function()
      assert.are.equal('{"a":1}', encode({a = 1}))
      assert.are.equal('{"1":true}', encode({["1"] = true}))
      assert.are.equal('{"":"empty key"}', encode({[""] = "empty key"}))
      assert.are.equal('{"a\\"b\\n":null}', encode({['a"b\n'] = null}))
      assert.are.equal('{"caf\195\169":1}', encode({["caf\195\169"] = 1}))
    end)

    it("writes every pair once, in lua_next order", function()
      local s = encode({a = 1, b = "x"})
      assert.is_true(s == '{"a":1,"b":"x"}' or s == '{"b":"x","a":1}', s)
      local t, n = {}, 0
      for i = 1, 50 do t["k" .. i] = i end
      local body = encode(t):match("^{(.*)}$")
      for pair in body:gmatch("[^,]+") do
        local k, v = pair:match('^"k(%d+)":(%d+)$')
        assert.are.equal(k, v)
        n = n + 1
      end
      assert.are.equal(50, n)
    end)

    it("rejects a table mixing index and string keys", function()
      assert.are.equal(key_error("number"), encode_error({1, 2, x = 3}))
      assert.are.equal(key_error("number"), encode_error({x = 1, [2] = 2}))
      assert.are.equal(key_error("number"), encode_error({a = {1, n = 1}}))
    end)

    it("rejects number keys that are not exactly 1..n", function()
      assert.are.equal(key_error("number"), encode_error({[1] = 1, [3] = 3}))
      assert.are.equal(key_error("number"), encode_error({1, nil, 3}))
      assert.are.equal(key_error("number"), encode_error({[0] = "z"}))
      assert.are.equal(key_error("number"), encode_error({[-1] = "z"}))
      assert.are.equal(key_error("number"), encode_error({[1.5] = "z"}))
      assert.are.equal(key_error("number"), encode_error({[2] = "b"}))
      assert.are.equal(key_error("number"), encode_error({[2 ^ 40] = 1}))
    end)

    it("rejects keys of other types, naming the type", function()
      assert.are.equal(key_error("boolean"), encode_error({[true] = 1}))
      assert.are.equal(key_error("table"), encode_error({[{}] = 1}))
      assert.are.equal(key_error("function"), encode_error({[print] = 1}))
    end)
  end)

  describe("raw access", function()
    it("ignores __index, __pairs and __len of a plain table's metatable", function()
      local mt = {
        __index = function() return "from __index" end,
        __pairs = function() error("__pairs must not be called") end,
        __len = function() return 99 end,
      }
      assert.are.equal("{}", encode(setmetatable({}, mt)))
      assert.are.equal('{"a":1}', encode(setmetatable({a = 1}, mt)))
      assert.are.equal("[1,2]", encode(setmetatable({1, 2}, mt)))
    end)
  end)

  describe("numbers", function()
    it("writes integers exactly", function()
      assert.are.equal("0", encode(0))
      assert.are.equal("-1", encode(-1))
      assert.are.equal("123456789", encode(123456789))
      assert.are.equal("[10,-20,300]", encode({10, -20, 300}))
    end)

    it("writes the integer range limits exactly", function()
      if HAS_INTEGERS then
        assert.are.equal("9223372036854775807", encode(math.maxinteger))
        assert.are.equal("-9223372036854775808", encode(math.mininteger))
        assert.are.equal("[-9223372036854775808,9223372036854775807]",
                         encode({math.mininteger, math.maxinteger}))
      else
        -- Lua 5.1 / LuaJIT: integral doubles within +-2^53 print as integers.
        assert.are.equal("9007199254740992", encode(2 ^ 53))
        assert.are.equal("-9007199254740992", encode(-2 ^ 53))
        assert.are.equal("18014398509481984.0", encode(2 ^ 54))
      end
    end)

    it("writes floats as the shortest text that reads back, with '.'", function()
      assert.are.equal("0.1", encode(0.1))
      assert.are.equal("1.5", encode(1.5))
      assert.are.equal("-2.25", encode(-2.25))
      assert.are.equal("0.30000000000000004", encode(0.1 + 0.2))
      assert.are.equal("0.3333333333333333", encode(1 / 3))
      assert.are.equal("123.456", encode(123.456))
      assert.are.equal("-65.61361699999998", encode(-65.613616999999977))
      assert.are.equal("-1.5e-10", encode(-1.5e-10))
      assert.are.equal("1e+300", encode(1e300))
      assert.are.equal("1.7976931348623157e+308", encode(1.7976931348623157e308))
      assert.are.equal("2.2250738585072014e-308", encode(2.2250738585072014e-308))
      assert.are.equal("[1.25,-0.5]", encode({1.25, -0.5}))
    end)

    it("writes subnormals with their shortest digits", function()
      assert.are.equal("5e-324", encode(5e-324))
      assert.are.equal("1e-323", encode(1e-323))
      assert.are.equal("-2.225073858507201e-308", encode(-2.225073858507201e-308))
      assert.are.equal(5e-324, tonumber(encode(5e-324)))
    end)

    it("switches to exponent notation below 1e-6 and from 1e21 (JSON.stringify's layout)", function()
      assert.are.equal("0.000001", encode(0.000001))
      assert.are.equal("0.0000012345", encode(0.0000012345))
      assert.are.equal("1e-7", encode(1e-7))
      assert.are.equal("9.99e-7", encode(9.99e-7))
      assert.are.equal("100000000000000000000.0", encode(1e20))
      assert.are.equal("123456789012345680000.0", encode(123456789012345678901.0))
      assert.are.equal("1e+21", encode(1e21))
      assert.are.equal("1.25e+21", encode(1.25e21))
      assert.are.equal("1e+22", encode(1e22))
      assert.are.equal("1152921504606847000.0", encode(2 ^ 60))
    end)

    it("writes integral floats with .0 (5.3+) or as integers within 2^53 (5.1)", function()
      local negzero = -(0 * 1.0)
      if HAS_INTEGERS then
        assert.are.equal("1.0", encode(1.0))
        assert.are.equal("-0.0", encode(negzero))
        assert.are.equal("0.0", encode(0.0))
        assert.are.equal("100.0", encode(100.0))
        assert.are.equal("-42.0", encode(-42.0))
        assert.are.equal("999999999999999.0", encode(999999999999999.0))
        assert.are.equal("1000000000000000.0", encode(1e15))
        assert.are.equal("9007199254740992.0", encode(2.0 ^ 53))
        assert.are.equal("[1,1.0]", encode({1, 1.0}))
      else
        assert.are.equal("1", encode(1.0))
        assert.are.equal("0", encode(negzero))
        assert.are.equal("100", encode(100.0))
        assert.are.equal("999999999999999", encode(999999999999999.0))
        assert.are.equal("1000000000000000", encode(1e15))
        assert.are.equal("9007199254740992", encode(2 ^ 53))
      end
      -- Beyond 2^53 every runtime writes floats.
      assert.are.equal("9007199254740994.0", encode(2 ^ 53 + 2))
      assert.are.equal("10000000000000000.0", encode(1e16))
      assert.are.equal("18014398509481984.0", encode(2 ^ 54))
    end)

    it("reads back every random double bit for bit, and never longer than %.17g", function()
      math.randomseed(4321)
      for i = 1, 20000 do
        local x = (math.random() - 0.5) * 2 ^ math.random(-1074, 1023)
        if i % 7 == 0 and math.abs(x) < 1e300 then x = math.floor(x * 1000) / 1000 end
        local text = encode(x)
        if x ~= math.floor(x) or x ~= x or math.abs(x) >= 2 ^ 53 or not HAS_INTEGERS then
          local back = tonumber(text)
          assert(back == x and (x ~= 0 or not HAS_INTEGERS or 1 / back == 1 / x), text)
          local digits = #(text:gsub("e.*$", ""):gsub("[^0-9]", ""):gsub("^0+", ""):gsub("0+$", ""))
          local c = #(string.format("%.17e", x):gsub("e.*$", ""):gsub("[^0-9]", ""):gsub("^0+", ""):gsub("0+$", ""))
          assert(digits <= math.max(c, 1), text)
        end
      end
    end)

    it("rejects NaN and infinities", function()
      local inf = math.huge
      assert.are.equal("cozmox.json.encode: cannot encode NaN/inf (got NaN)", encode_error(0 / 0))
      assert.are.equal("cozmox.json.encode: cannot encode NaN/inf (got inf)", encode_error(inf))
      assert.are.equal("cozmox.json.encode: cannot encode NaN/inf (got -inf)", encode_error(-inf))
      assert.are.equal("cozmox.json.encode: cannot encode NaN/inf (got inf)", encode_error({1, {x = inf}}))
    end)

    it("ignores the C locale's decimal point", function()
      local previous = os.setlocale(nil, "numeric")
      finally(function() os.setlocale(previous or "C", "numeric") end)
      assert.is_truthy(os.setlocale("de_DE.UTF-8", "numeric"),
                       "locale de_DE.UTF-8 missing: run scripts/deps.sh")
      assert.are.equal("de_DE.UTF-8", os.setlocale(nil, "numeric"))
      assert.are.equal("1.5", encode(1.5))
      assert.are.equal("0.1", encode(0.1))
      assert.are.equal("0.30000000000000004", encode(0.1 + 0.2))
      assert.are.equal("1e+300", encode(1e300))
      assert.are.equal("[1.25,-0.5]", encode({1.25, -0.5}))
      assert.are.equal(HAS_INTEGERS and "2.0" or "2", encode(2.0))
      assert.are.equal("C", os.setlocale("C", "numeric"))
    end)
  end)

  describe("strings", function()
    it("writes plain text as is, / and DEL included", function()
      assert.are.equal('""', encode(""))
      assert.are.equal('"hello, world"', encode("hello, world"))
      assert.are.equal('"a/b"', encode("a/b"))
      assert.are.equal('"\127"', encode("\127"))
      assert.are.equal('"' .. string.rep("abcdefghij", 10000) .. '"', encode(string.rep("abcdefghij", 10000)))
    end)

    it("escapes quote, backslash and the short-form control characters", function()
      assert.are.equal('"\\""', encode('"'))
      assert.are.equal('"\\\\"', encode("\\"))
      assert.are.equal('"\\b\\f\\n\\r\\t"', encode("\b\f\n\r\t"))
      assert.are.equal('"say \\"hi\\"\\n"', encode('say "hi"\n'))
    end)

    it("escapes every other control character as \\u00XX", function()
      local short = {[8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r"}
      for c = 0, 31 do
        local want = short[c] or string.format("\\u%04x", c)
        assert.are.equal('"' .. want .. '"', encode(string.char(c)))
      end
      assert.are.equal('"\\u0000x\\u001f"', encode("\0x\31"))
    end)

    it("finds a special byte at every position of short and long strings", function()
      for len = 1, 40 do
        for pos = 1, len do
          local before, after = string.rep("a", pos - 1), string.rep("b", len - pos)
          assert.are.equal('"' .. before .. '\\"' .. after .. '"', encode(before .. '"' .. after))
          assert.are.equal('"' .. before .. '\\\\' .. after .. '"', encode(before .. "\\" .. after))
          assert.are.equal('"' .. before .. '\\u0001' .. after .. '"', encode(before .. "\1" .. after))
          assert.are.equal('"' .. before .. "\226\130\172" .. after .. '"',
                           encode(before .. "\226\130\172" .. after))
          assert.are.equal(utf8_error(pos), encode_error(before .. "\255" .. after))
        end
      end
    end)

    it("escapes runs of special bytes inside long text", function()
      local s = string.rep('line "x"\n', 1000)
      assert.are.equal('"' .. string.rep('line \\"x\\"\\n', 1000) .. '"', encode(s))
    end)

    it("writes valid UTF-8 raw, up to U+10FFFF", function()
      local valid = {
        "\194\128",             -- U+0080
        "caf\195\169",          -- e acute
        "\223\191",             -- U+07FF
        "\224\160\128",         -- U+0800
        "\226\130\172",         -- euro sign
        "\237\159\191",         -- U+D7FF, below the surrogates
        "\238\128\128",         -- U+E000, above them
        "\239\191\191",         -- U+FFFF
        "\240\144\128\128",     -- U+10000
        "\240\159\152\128",     -- emoji
        "\244\143\191\191",     -- U+10FFFF
      }
      for _, s in ipairs(valid) do
        assert.are.equal('"' .. s .. '"', encode(s))
      end
    end)

    it("rejects invalid UTF-8, naming the first byte of the bad sequence", function()
      local cases = {
        {"\128", 1},                    -- lone continuation byte
        {"\191", 1},
        {"\192\128", 1},                -- overlong NUL
        {"\193\191", 1},                -- overlong 2-byte
        {"\224\128\128", 1},            -- overlong 3-byte
        {"\224\159\191", 1},
        {"\240\128\128\128", 1},        -- overlong 4-byte
        {"\240\143\191\191", 1},
        {"\237\160\128", 1},            -- U+D800 surrogate
        {"\237\191\191", 1},            -- U+DFFF surrogate
        {"\244\144\128\128", 1},        -- U+110000
        {"\245\128\128\128", 1},        -- lead byte beyond U+10FFFF
        {"\248\136\128\128\128", 1},    -- 5-byte form
        {"\255", 1},
        {"\195\40", 1},                 -- bad continuation
        {"x\226\130\40", 2},
        {"x\240\159\152\40", 2},
        {"ab\226\130", 3},              -- truncated at the end
        {"abc\195", 4},
        {"abc\240\159\152", 4},
        {"h\195\169llo\255", 7},        -- after a valid 2-byte sequence
      }
      for _, case in ipairs(cases) do
        assert.are.equal(utf8_error(case[2]), encode_error(case[1]))
      end
    end)

    -- Strings of 0..64 bytes mixing ASCII, 2-, 3- and 4-byte sequences,
    -- DEL and bytes that need escapes, so that runs, escapes and
    -- sequences meet the 16-byte blocks of the SSSE3 path at every
    -- alignment; ref_string is the expected text, byte by byte.
    local PIECES = { "a", "z", "\195\169", "\230\151\165", "\240\159\152\128", "\n", '"', "\\", "\0", "\31",
      "\127", "\244\143\191\191" }
    local SHORT = { [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r", [34] = '\\"', [92] = "\\\\" }

    local function text_of(len, seed)
      local state, t, n = seed % 2147483646 + 1, {}, 0
      while n < len do
        state = (state * 48271) % 2147483647
        local p = PIECES[state % #PIECES + 1]
        if n + #p > len then p = "a" end
        t[#t + 1] = p
        n = n + #p
      end
      return table.concat(t)
    end

    local function ref_string(s)
      local out = {}
      for i = 1, #s do
        local b = s:byte(i)
        out[i] = SHORT[b] or (b < 32 and string.format("\\u%04x", b)) or string.char(b)
      end
      return '"' .. table.concat(out) .. '"'
    end

    it("writes text of 0..64 bytes at every alignment, as values, keys and repeats", function()
      for len = 0, 64 do
        for seed = 1, 4 do
          local s = text_of(len, seed * 97 + len)
          local want = ref_string(s)
          assert.are.equal(want, encode(s))
          assert.are.equal("{" .. want .. ":" .. want .. "}", encode({[s] = s}))
          -- Forty copies: past the first 32 strings the encoder copies
          -- repeats from its memo of what it wrote.
          local many, texts = {}, {}
          for i = 1, 40 do many[i], texts[i] = s, want end
          assert.are.equal("[" .. table.concat(texts, ",") .. "]", encode(array(many)))
          many[41] = {[s] = s}
          assert.are.equal("[" .. table.concat(texts, ",") .. ",{" .. want .. ":" .. want .. "}]",
                           encode(array(many)))
        end
      end
    end)

    it("finds invalid UTF-8 at every position of strings of 0..64 bytes", function()
      local bad = { "\255", "\128", "\192\175", "\224\128\128", "\237\160\128", "\244\144\128\128",
        "\245\128\128\128", "\226\130", "\240\159\152" }
      for len = 0, 64 do
        for pos = 0, len do
          local pre, post = text_of(pos, len * 3 + pos), text_of(len - pos, pos * 11 + len)
          for _, b in ipairs(bad) do
            local s, want = pre .. b .. post, utf8_error(#pre + 1)
            assert.are.equal(want, encode_error(s))
            assert.are.equal(want, encode_error({[s] = true}))
            assert.are.equal(want, encode_error(array({pre, s})))
          end
        end
      end
    end)

    it("checks UTF-8 in keys and nested strings too", function()
      assert.are.equal(utf8_error(2), encode_error({["a\255"] = 1}))
      assert.are.equal(utf8_error(1), encode_error({ok = {"fine", "\192\175"}}))
    end)
  end)

  describe("other values", function()
    it("writes booleans, nil and cozmox.null", function()
      assert.are.equal("true", encode(true))
      assert.are.equal("false", encode(false))
      assert.are.equal("null", encode(nil))
      assert.are.equal("null", encode(null))
      assert.are.equal("[null,true,false]", encode({null, true, false}))
      assert.are.equal('{"a":null}', encode({a = null}))
    end)

    it("requires an argument", function()
      local ok, err = pcall(encode)
      assert.is_false(ok)
      assert.is_truthy(err:find("bad argument #1", 1, true), err)
    end)

    it("rejects functions, threads and full userdata, naming the type", function()
      local function value_error(t)
        return "cozmox.json.encode: cannot encode value of type " .. t
      end
      assert.are.equal(value_error("function"), encode_error(print))
      assert.are.equal(value_error("function"), encode_error({a = {function() end}}))
      assert.are.equal(value_error("thread"), encode_error(coroutine.create(function() end)))
      assert.are.equal(value_error("userdata"), encode_error(io.stdout))
      assert.are.equal(value_error("userdata"), encode_error({io.stdout}))
    end)

    it("rejects light userdata other than cozmox.null", function()
      if not debug.upvalueid then
        pending("Lua 5.1 cannot make a non-NULL light userdata from Lua")
        return
      end
      local up = 1
      local id = debug.upvalueid(function() return up end, 1)
      assert.are.equal("cozmox.json.encode: cannot encode value of type light userdata",
                       encode_error({id}))
    end)
  end)

  describe("limits", function()
    it("detects cycles instead of overflowing the C stack", function()
      local msg = "cozmox.json.encode: cycle detected"
      local t = {}
      t[1] = t
      assert.are.equal(msg, encode_error(t))
      local o = {}
      o.self = o
      assert.are.equal(msg, encode_error(o))
      local a, b = {}, {}
      a.b, b[1] = b, a
      assert.are.equal(msg, encode_error({x = a}))
      local arr = array({})
      arr[1] = arr
      assert.are.equal(msg, encode_error(arr))
      local deep = nest(500, function(inner) return {inner} end)
      local leaf = deep
      while leaf[1] do leaf = leaf[1] end
      leaf[1] = deep
      assert.are.equal(msg, encode_error(deep))
      -- The table that finally breaks the depth limit is not on the cycle.
      local x = {}
      x[1], x[2] = nest(900, function(inner) return {inner} end), x
      assert.are.equal(msg, encode_error(x))
    end)

    it("accepts shared, acyclic references", function()
      local s = {1}
      assert.are.equal("[[1],[1]]", encode({s, s}))
      local shared = {k = "v"}
      local v = nest(999, function(inner) return {inner = inner, shared = shared} end)
      local _, copies = encode(v):gsub('{"k":"v"}', "")
      assert.are.equal(999, copies)
    end)

    it("accepts nesting 1000 deep and rejects 1001", function()
      local msg = "cozmox.json.encode: nesting deeper than 1000"
      local function arrays(n) return nest(n, function(inner) return {inner} end) end
      local function objects(n) return nest(n, function(inner) return {a = inner} end) end
      local function marked(n) return nest(n, function(inner) return array({inner}) end) end
      assert.are.equal(string.rep("[", 999) .. "[]" .. string.rep("]", 999), encode(marked(1000)))
      assert.are.equal(string.rep("[", 999) .. "{}" .. string.rep("]", 999), encode(arrays(1000)))
      assert.are.equal(string.rep('{"a":', 999) .. "{}" .. string.rep("}", 999), encode(objects(1000)))
      assert.are.equal(msg, encode_error(arrays(1001)))
      assert.are.equal(msg, encode_error(objects(1001)))
      assert.are.equal(msg, encode_error(marked(1001)))
      assert.are.equal(msg, encode_error({x = arrays(1000)}))
    end)

    it("keeps working after an error half-way through", function()
      for _ = 1, 100 do
        encode_error({a = string.rep("x", 1000), b = {1, 2, print}})
        encode_error({string.rep("y", 5000) .. "\255"})
      end
      assert.are.equal('{"a":[1,"two",null]}', encode({a = {1, "two", null}}))
    end)
  end)

  describe("options", function()
    local function opt_error(v, opts)
      local ok, err = pcall(function() return encode(v, opts) end)
      assert.is_false(ok, "encode accepted the options")
      assert.is_truthy(err:find("bad argument #2 to '", 1, true), err)
      return err:match("%((.*)%)$")
    end

    it("sort_keys writes object members in byte-wise key order, at every depth", function()
      local v = {b = 1, a = {z = true, y = {2, {d = 4, c = 3}}}, B = "up", [""] = 0, aa = 2,
                 ["\195\169"] = "e-acute", ["a\0b"] = "nul"}
      assert.are.equal('{"":0,"B":"up","a":{"y":[2,{"c":3,"d":4}],"z":true},"a\\u0000b":"nul",'
                       .. '"aa":2,"b":1,"\195\169":"e-acute"}', encode(v, {sort_keys = true}))
    end)

    it("sort_keys gives the same bytes whatever order the keys were inserted in", function()
      local keys = {}
      for i = 1, 200 do keys[i] = "key" .. i end
      local outputs = {}
      for round = 1, 3 do
        local t = {}
        for i = 1, 200 do
          local j = round == 1 and i or round == 2 and 201 - i or (i * 37) % 200 + 1
          t[keys[j]] = j
        end
        outputs[round] = encode({outer = t, list = {t}}, {sort_keys = true})
      end
      assert.are.equal(outputs[1], outputs[2])
      assert.are.equal(outputs[1], outputs[3])
      local sorted = {}
      for i = 1, 200 do sorted[i] = keys[i] end
      table.sort(sorted)
      local pos = 0
      for _, k in ipairs(sorted) do
        local at = outputs[1]:find('"' .. k .. '":', pos + 1, true)
        assert(at and at > pos, k)
        pos = at
      end
    end)

    it("sort_keys leaves arrays alone and still rejects non-string keys", function()
      assert.are.equal("[3,1,2]", encode({3, 1, 2}, {sort_keys = true}))
      assert.are.equal("{}", encode({}, {sort_keys = true}))
      assert.are.equal(key_error("boolean"), select(2, pcall(encode, {a = 1, [true] = 2}, {sort_keys = true})))
      assert.are.equal('{"a":1}', encode({a = 1}, {sort_keys = false}))
    end)

    it("sort_keys keeps its keys alive when a finalizer empties the object mid-encode", function()
      -- Pushing values can run a collection; a finalizer that removes
      -- every member and allocates over the freed strings must leave
      -- well-formed output: original keys, each with its value or null.
      -- A fresh interpreter: a small heap, so cycles end within the loop.
      local out, ok = require("support.util").run_lua([[
        local json = require("cozmox.json")
        local t, n = {}, 20000
        for i = 1, n do t[("key%05d"):format(i) .. string.rep("x", 60)] = i end
        local encoding, fired = false, false
        local arm
        local function finalizer()
          if not encoding then return arm() end
          if fired then return end
          fired = true
          for k in pairs(t) do t[k] = nil end
          local junk = {}
          for i = 1, n do junk[i] = ("JUNK%05d"):format(i) .. string.rep("!", 60) end
        end
        function arm()
          if newproxy then -- Lua 5.1 / LuaJIT: only userdata have __gc
            getmetatable(newproxy(true)).__gc = finalizer
          else
            setmetatable({}, { __gc = finalizer })
          end
        end
        arm()
        collectgarbage("setpause", 0)
        collectgarbage("setstepmul", 1000)
        encoding = true
        local ok, s = pcall(json.encode, t, { sort_keys = true })
        encoding = false
        assert(ok, s)
        local count, nulls = 0, 0
        for k, x in pairs(json.decode(s)) do
          local i = tonumber(k:match("^key(%d%d%d%d%d)x+$"))
          assert(i and #k == 68, ("a key not written by the caller: %q"):format(k:sub(1, 40)))
          assert(x == json.null or x == i, k)
          if x == json.null then nulls = nulls + 1 end
          count = count + 1
        end
        assert(count == n, count)
        io.write("ok ", tostring(fired), " ", nulls, "\n")
      ]])
      assert(ok, out)
      assert.matches("^ok %a+ %d+", out) -- whether the finalizer ran in the call depends on the collector
    end)

    it("indent writes one member per line, indented, with ': ' after keys", function()
      local v = {k = {1, {x = "y"}, array({}), {}}}
      assert.are.equal('{\n  "k": [\n    1,\n    {\n      "x": "y"\n    },\n    [],\n    {}\n  ]\n}',
                       encode(v, {indent = 2}))
      assert.are.equal('[\n\t1,\n\t[\n\t\t2\n\t]\n]', encode({1, {2}}, {indent = "\t"}))
      assert.are.equal('[\n1,\n[\n2\n]\n]', encode({1, {2}}, {indent = 0}))
      assert.are.equal('[\n1\n]', encode({1}, {indent = ""}))
      assert.are.equal('{\n   "a": null\n}', encode({a = null}, {indent = "   "}))
    end)

    it("indent keeps empty tables and scalars compact and adds no final newline", function()
      assert.are.equal("{}", encode({}, {indent = 4}))
      assert.are.equal("[]", encode(array({}), {indent = 4}))
      assert.are.equal('"x"', encode("x", {indent = 4}))
      assert.are.equal("1.5", encode(1.5, {indent = 4}))
      assert.are.equal("[1,2]", encode({1, 2}, {indent = false}))
    end)

    it("indent and sort_keys together give reproducible pretty output", function()
      local v = {zeta = {3, 2}, alpha = {beta = true, a = null}}
      assert.are.equal('{\n  "alpha": {\n    "a": null,\n    "beta": true\n  },\n  "zeta": [\n    3,\n    2\n  ]\n}',
                       encode(v, {indent = 2, sort_keys = true}))
    end)

    it("pretty output decodes to the same value", function()
      local v = {a = {1, 2.5, {b = "c\n"}}, d = array({}), e = {}}
      assert.are.same(core.decode(encode(v)), core.decode(encode(v, {indent = 3, sort_keys = true})))
    end)

    it("rejects bad options with bad argument #2", function()
      local indent_msg = "indent must be an integer from 0 to 32 or a string of spaces and tabs"
      assert.are.equal("options table expected", opt_error(1, "pretty"))
      assert.are.equal("options table expected", opt_error(1, 2))
      assert.are.equal("sort_keys must be a boolean", opt_error(1, {sort_keys = 1}))
      assert.are.equal("sort_keys must be a boolean", opt_error(1, {sort_keys = "yes"}))
      assert.are.equal(indent_msg, opt_error(1, {indent = 2.5}))
      assert.are.equal(indent_msg, opt_error(1, {indent = -1}))
      assert.are.equal(indent_msg, opt_error(1, {indent = 33}))
      assert.are.equal(indent_msg, opt_error(1, {indent = "--"}))
      assert.are.equal(indent_msg, opt_error(1, {indent = "\n"}))
      assert.are.equal(indent_msg, opt_error(1, {indent = string.rep(" ", 33)}))
      assert.are.equal(indent_msg, opt_error(1, {indent = true}))
      assert.are.equal("unknown option 'sortkeys'", opt_error(1, {sortkeys = true}))
      assert.are.equal("unknown option 'number'", opt_error(1, {true}))
      -- validated before anything is written
      assert.are.equal("sort_keys must be a boolean", opt_error(print, {sort_keys = 0}))
    end)

    it("accepts nil and an empty table as the defaults", function()
      assert.are.equal("[1]", encode({1}, nil))
      assert.are.equal("[1]", encode({1}, {}))
      assert.are.equal(string.rep("[", 999) .. "[]" .. string.rep("]", 999),
                       encode(nest(1000, function(inner) return array({inner}) end), {sort_keys = true,
                           indent = 0}):gsub("\n", ""))
    end)
  end)

  -- These need the decoder (core.decode, src/jdecode.c).
  describe("round trip through core.decode", function()
    it("re-encodes canonical texts unchanged", function()
      local texts = {
        "[]", "{}", "[1,2,3]", '{"a":[1,{"b":null}]}', '[true,false,null]',
        '"\\u0000\\n\\"/caf\195\169"', "[0.1,-2.5,1e+300]", '{"k":[[],{}]}',
        '[[[[]]],{"x":{"y":{}}}]', '"\240\159\152\128"',
      }
      if HAS_INTEGERS then
        texts[#texts + 1] = "[-9223372036854775808,9223372036854775807,1.0,-0.0]"
      else
        texts[#texts + 1] = "[-9007199254740992,9007199254740992,1]"
      end
      for _, text in ipairs(texts) do
        assert.are.equal(text, encode(core.decode(text)))
      end
    end)

    it("decodes what it encodes to an equal value", function()
      local v = {
        name = "caf\195\169 \"quoted\"\n",
        list = {1, 2.5, -3, true, false, null, "x"},
        empty_array = array({}),
        empty_object = {},
        nested = {a = {b = {c = {1, {d = "e"}}}}},
      }
      local back = core.decode(encode(v))
      assert.are.same(v, back)
      assert.are.equal(array_mt, getmetatable(back.empty_array))
      assert.are.equal("[]", encode(back.empty_array))
      assert.are.equal("{}", encode(back.empty_object))
    end)
  end)
end)
