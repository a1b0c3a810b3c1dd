-- cozmox.time: ISO 8601 parse/format, pure arithmetic in UTC.
local cozmox = require("cozmox")
local time = require("cozmox.time")

local function is_int(v)
    if math.type then return math.type(v) == "integer" end
    return v == math.floor(v)
end

describe("cozmox.time", function()
    it("is exposed as cozmox.time", function()
        assert.equal(time, cozmox.time)
    end)

    describe("parse", function()
        it("reads Z date-times as epoch seconds, integers when whole", function()
            local t = time.parse("2023-11-07T05:31:56Z")
            assert.equal(1699335116, t)
            assert.is_true(is_int(t))
            assert.equal(0, time.parse("1970-01-01T00:00:00Z"))
            assert.equal(0, time.parse("1970-01-01T00:00:00z"))
            assert.equal(0, time.parse("1970-01-01t00:00:00Z"))
            assert.equal(-1, time.parse("1969-12-31T23:59:59Z"))
            assert.equal(951782400, time.parse("2000-02-29T00:00:00Z"))     -- a leap day of a /400 year
            assert.equal(253402300799, time.parse("9999-12-31T23:59:59Z"))
            assert.equal(-62167219200, time.parse("0000-01-01T00:00:00Z"))
        end)

        it("keeps fractional seconds of any length", function()
            assert.equal(1699335116.5, time.parse("2023-11-07T05:31:56.5Z"))
            assert.equal(1699335116.25, time.parse("2023-11-07T05:31:56.250Z"))
            assert.near(1699335116.123456, time.parse("2023-11-07T05:31:56.123456789Z"), 1e-6)
            assert.equal(-0.5, time.parse("1969-12-31T23:59:59.5Z"))
            local whole = time.parse("2023-11-07T05:31:56.000Z")
            assert.equal(1699335116, whole)
            assert.is_true(is_int(whole))
        end)

        it("applies +hh:mm, -hh:mm, +hhmm and +hh offsets", function()
            assert.equal(1699335116 - 3600, time.parse("2023-11-07T05:31:56+01:00"))
            assert.equal(1699335116 + 5 * 3600 + 30 * 60, time.parse("2023-11-07T05:31:56-05:30"))
            assert.equal(1699335116 - 3600, time.parse("2023-11-07T05:31:56+0100"))
            assert.equal(1699335116 - 3600, time.parse("2023-11-07T05:31:56+01"))
            assert.equal(1699335116, time.parse("2023-11-07T05:31:56+00:00"))
            assert.equal(1699335116, time.parse("2023-11-07T05:31:56-00:00"))
            assert.equal(1699331516.25, time.parse("2023-11-07T05:31:56.250+01:00"))
            -- crossing a day, a month and a year
            assert.equal(time.parse("2024-01-01T03:00:00Z"), time.parse("2023-12-31T23:00:00-04:00"))
            assert.equal(time.parse("2023-12-31T20:00:00Z"), time.parse("2024-01-01T09:45:00+13:45"))
        end)

        it("reads a date alone, minutes without seconds, and no designator as UTC", function()
            assert.equal(1699315200, time.parse("2023-11-07"))
            assert.equal(1699335060, time.parse("2023-11-07T05:31Z"))
            assert.equal(1699335060 - 7200, time.parse("2023-11-07T05:31+02:00"))
            assert.equal(1699335116, time.parse("2023-11-07T05:31:56"))
        end)

        it("returns nil and a message for invalid input", function()
            local cases = {
                [""] = "expected YYYY-MM-DD at the start",
                ["nope"] = "expected YYYY-MM-DD at the start",
                ["23-11-07"] = "expected YYYY-MM-DD at the start",
                ["2023/11/07"] = "expected YYYY-MM-DD at the start",
                ["2023-00-07"] = "month out of range",
                ["2023-13-07"] = "month out of range",
                ["2023-11-00"] = "day out of range",
                ["2023-11-31"] = "day out of range",
                ["2023-02-29T00:00:00Z"] = "day out of range",
                ["1900-02-29T00:00:00Z"] = "day out of range",
                ["2023-11-07T24:00:00Z"] = "hour out of range",
                ["2023-11-07T05:60:00Z"] = "minute out of range",
                ["2023-11-07T05:31:60Z"] = "second out of range",
                ["2023-11-07 05:31:56Z"] = "expected Thh:mm after the date",
                ["2023-11-07T5:31:56Z"] = "expected Thh:mm after the date",
                ["2023-11-07+01:00"] = "expected Thh:mm after the date",
                ["2023-11-07T05:31:56.Z"] = "bad time zone designator",
                ["2023-11-07T05:31:56,5Z"] = "bad time zone designator",
                ["2023-11-07T05:31:56ZZ"] = "bad time zone designator",
                ["2023-11-07T05:31:56+1:00"] = "bad time zone designator",
                ["2023-11-07T05:31:56+01:0"] = "bad time zone designator",
                ["2023-11-07T05:31:56 "] = "bad time zone designator",
                ["2023-11-07T05:31:56+24:00"] = "time zone offset out of range",
                ["2023-11-07T05:31:56+01:60"] = "time zone offset out of range",
            }
            for input, why in pairs(cases) do
                local t, err = time.parse(input)
                assert.is_nil(t, input)
                assert.equal("invalid ISO 8601 date-time '" .. input .. "': " .. why, err)
            end
        end)

        it("raises for a non-string (a programmer error)", function()
            assert.has_error(function() time.parse(nil) end, "bad argument #1 to 'parse' (string expected, got nil)")
            assert.has_error(function() time.parse(5) end, "bad argument #1 to 'parse' (string expected, got number)")
        end)
    end)

    describe("format", function()
        it("writes UTC with milliseconds by default (the API's form)", function()
            assert.equal("2023-11-07T05:31:56.000Z", time.format(1699335116))
            assert.equal("2023-11-07T05:31:56.250Z", time.format(1699335116.25))
            assert.equal("1970-01-01T00:00:00.000Z", time.format(0))
            assert.equal("1969-12-31T23:59:59.500Z", time.format(-0.5))
            assert.equal("2000-02-29T00:00:00.000Z", time.format(951782400))
            assert.equal("2024-12-31T23:59:59.000Z", time.format(1735689599))
            assert.equal("9999-12-31T23:59:59.000Z", time.format(time.MAX))
            assert.equal("0000-01-01T00:00:00.000Z", time.format(time.MIN))
        end)

        it("rounds to the precision asked for (0..6 digits)", function()
            assert.equal("2023-11-07T05:31:56Z", time.format(1699335116, 0))
            assert.equal("2023-11-07T05:31:57Z", time.format(1699335116.5, 0))
            assert.equal("2023-11-07T05:31:56.1Z", time.format(1699335116.123, 1))
            assert.equal("2023-11-07T05:31:56.123Z", time.format(1699335116.123))      -- not .122
            assert.equal("1970-01-01T00:00:01.001Z", time.format(1.001))
            assert.equal("2023-11-07T05:31:57.000Z", time.format(1699335116.9996))    -- carries into the second
            assert.equal("1970-01-01T00:00:00.000001Z", time.format(0.000001, 6))
            assert.equal("2023-12-31T23:59:59.999Z", time.format(1704067199.999))
            assert.equal("2024-01-01T00:00:00.000Z", time.format(1704067199.9999))  -- and into the year
        end)

        it("round-trips with parse", function()
            for _, s in ipairs({ "2023-11-07T05:31:56.123Z", "1999-12-31T23:59:59.999Z", "2400-02-29T12:00:00.000Z",
                "1900-03-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z", "1969-07-20T20:17:40.000Z" }) do
                assert.equal(s, time.format(assert(time.parse(s))))
            end
            for t = -400 * 86400 * 366, 400 * 86400 * 366, 86400 * 97 + 3671 do
                assert.equal(t, time.parse(time.format(t, 0)))
            end
        end)

        it("raises for what is not a finite time within years 0000..9999", function()
            local msg = "bad argument #1 to 'format' (epoch seconds within years 0000..9999 expected, got "
            assert.has_error(function() time.format("0") end, msg .. "string)")
            assert.has_error(function() time.format(nil) end, msg .. "nil)")
            assert.has_error(function() time.format(0 / 0) end)
            assert.has_error(function() time.format(math.huge) end, msg .. tostring(math.huge) .. ")")
            assert.has_error(function() time.format(time.MAX + 1) end)
            assert.has_error(function() time.format(time.MIN - 1) end)
            assert.has_error(function() time.format(0, 7) end, "bad argument #2 to 'format' (integer 0..6 expected)")
            assert.has_error(function() time.format(0, 1.5) end, "bad argument #2 to 'format' (integer 0..6 expected)")
        end)

        it("does not depend on TZ or the C locale", function()
            local util = require("support.util")
            local f = os.tmpname()
            local h = assert(io.open(f, "w"))
            h:write([[
                assert(os.setlocale("de_DE.UTF-8", "numeric"), "no de_DE.UTF-8 locale")
                assert(os.setlocale(nil, "numeric") == "de_DE.UTF-8", "the locale is not in effect")
                local t = require("cozmox.time")
                io.write(t.format(1699335116.25), " ", t.format(0.5, 1), " ",
                    tostring(t.parse("2023-11-07T05:31:56.5+01:00") == 1699331516.5), " ",
                    tostring(t.parse("1970-01-01T00:00:00.25Z") == 0.25))
            ]])
            h:close()
            local out, ok = util.run("TZ=Asia/Kathmandu " .. util.lua_bin() .. " " .. f)
            os.remove(f)
            assert(ok, out)
            assert.equal("2023-11-07T05:31:56.250Z 1970-01-01T00:00:00.5Z true true", out)
        end)
    end)
end)
