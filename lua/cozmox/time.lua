--- cozmox.time: ISO 8601 date-times <-> epoch seconds, in UTC.
--
--   parse("2023-11-07T05:31:56.250+01:00") -> 1699331516.25
--   parse("nope")                          -> nil, "invalid ISO 8601 date-time 'nope': ..."
--   format(1699335116.25)                  -> "2023-11-07T05:31:56.250Z"
--   format(1699335116, 0)                  -> "2023-11-07T05:31:56Z"
--
-- Pure arithmetic on the proleptic Gregorian calendar: no os.time/os.date,
-- so neither the TZ environment nor the C locale changes a result.  Runs on
-- Lua 5.1-5.4 and LuaJIT (no integer division, no utf8 library).
local type, tonumber, tostring, error = type, tonumber, tostring, error
local floor = math.floor
local str_match, str_format = string.match, string.format
local tointeger = math.tointeger

local _M = {}

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
-- days_from_civil).
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- The date of a day number: year, month, day (civil_from_days).
local function civil_from_days(z)
    z = z + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local d = doy - floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then y = y + 1 end
    return y, m, d
end

local function is_leap(y)
    return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_in_month(y, m)
    if m == 2 and is_leap(y) then return 29 end
    return MONTH_DAYS[m]
end

-- Epoch seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the
-- range format() accepts (four-digit years).
_M.MIN = days_from_civil(0, 1, 1) * 86400
_M.MAX = days_from_civil(9999, 12, 31) * 86400 + 86399

local function as_integer(v)
    if tointeger then return tointeger(v) or v end
    return v
end

local function invalid(s, why)
    return nil, str_format("invalid ISO 8601 date-time '%s': %s", s, why)
end

---Epoch seconds (UTC) of an ISO 8601 date or date-time in extended format:
---`YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.fff...]]` followed by `Z`,
---`+hh:mm`, `-hh:mm`, `+hhmm`, `+hh` or nothing (no offset is read as UTC;
---so is a date alone).  `T`/`Z` may be lower case.  Fractional seconds of
---any length are kept: the result is a float then, else an integer (on Lua
---5.3+).  Invalid input (a malformed text, a field out of range such as
---2023-02-29 or 24:00, a leap second 60) gives nil and a message.
---Raises for a non-string argument (a programmer error).
---@param s string
---@return number? epoch seconds
---@return string? err
function _M.parse(s)
    if type(s) ~= "string" then
        error("bad argument #1 to 'parse' (string expected, got " .. type(s) .. ")", 2)
    end
    local y, mo, d, rest = str_match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
    if not y then return invalid(s, "expected YYYY-MM-DD at the start") end
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    if mo < 1 or mo > 12 then return invalid(s, "month out of range") end
    if d < 1 or d > days_in_month(y, mo) then return invalid(s, "day out of range") end
    local h, mi, sec, frac, zone = 0, 0, 0, nil, ""
    if rest ~= "" then
        local hh, mm, tail = str_match(rest, "^[Tt](%d%d):(%d%d)(.*)$")
        if not hh then return invalid(s, "expected Thh:mm after the date") end
        h, mi = tonumber(hh), tonumber(mm)
        local ss, tail2 = str_match(tail, "^:(%d%d)(.*)$")
        if ss then
            sec, tail = tonumber(ss), tail2
            local f, tail3 = str_match(tail, "^%.(%d+)(.*)$")
            if f then frac, tail = f, tail3 end
        end
        zone = tail
        if h > 23 then return invalid(s, "hour out of range") end
        if mi > 59 then return invalid(s, "minute out of range") end
        if sec > 59 then return invalid(s, "second out of range") end
    end
    local offset = 0
    if zone ~= "" and zone ~= "Z" and zone ~= "z" then
        local sign, oh, om = str_match(zone, "^([+-])(%d%d):?(%d%d)$")
        if not sign then
            sign, oh = str_match(zone, "^([+-])(%d%d)$")
            om = "00"
        end
        if not sign or rest == "" then return invalid(s, "bad time zone designator") end
        oh, om = tonumber(oh), tonumber(om)
        if oh > 23 or om > 59 then return invalid(s, "time zone offset out of range") end
        offset = (oh * 60 + om) * 60
        if sign == "-" then offset = -offset end
    end
    local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
    if frac then
        -- digits / 10^n: no decimal point is read, so no locale is involved
        frac = frac:sub(1, 9)
        local f = tonumber(frac) / 10 ^ #frac
        if f ~= 0 then return t + f end
    end
    return as_integer(t)
end

---ISO 8601 text in UTC of epoch seconds: `YYYY-MM-DDThh:mm:ss.fffZ`, with
---`digits` fractional digits (0..6, default 3, the API's own form; 0 drops
---the dot).  The value is rounded to that precision.  Raises for a value
---that is not a finite number within years 0000..9999.
---@param t number epoch seconds
---@param digits? integer fractional digits, 0..6 (default 3)
---@return string
function _M.format(t, digits)
    if type(t) ~= "number" or t ~= t or t < _M.MIN or t >= _M.MAX + 1 then
        error("bad argument #1 to 'format' (epoch seconds within years 0000..9999 expected, got "
            .. (type(t) == "number" and tostring(t) or type(t)) .. ")", 2)
    end
    if digits == nil then digits = 3 end
    if type(digits) ~= "number" or digits < 0 or digits > 6 or floor(digits) ~= digits then
        error("bad argument #2 to 'format' (integer 0..6 expected)", 2)
    end
    local scale = 10 ^ digits
    local units = floor(t * scale + 0.5)
    local secs = floor(units / scale)
    local fraction = units - secs * scale
    if secs > _M.MAX then secs, fraction = _M.MAX, scale - 1 end
    local days = floor(secs / 86400)
    local sod = secs - days * 86400
    local y, m, d = civil_from_days(days)
    local out = str_format("%04d-%02d-%02dT%02d:%02d:%02d", y, m, d,
        floor(sod / 3600), floor(sod % 3600 / 60), sod % 60)
    if digits > 0 then out = out .. str_format(".%0" .. digits .. "d", fraction) end
    return out .. "Z"
end

_M.days_from_civil = days_from_civil
_M.civil_from_days = civil_from_days

return _M
