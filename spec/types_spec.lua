-- The LuaLS annotations (lua/cozmox/types.lua, and those beside the code
-- in session.lua and time.lua) agree with the API reference's example
-- session (spec/fixtures/session.json) and with the code itself.
--
-- lua-language-server is not packaged for Debian 12, so its --check cannot
-- run here; when it is installed, the last test runs it too.
local cozmox = require("cozmox")
local session = require("cozmox.session")
local errors = require("cozmox.errors")
local util = require("support.util")

local root = util.spec_dir:gsub("/spec$", "")
if root == "spec" then root = "." end

local SOURCES = { "lua/cozmox/types.lua", "lua/cozmox/session.lua", "lua/cozmox/time.lua" }

-- The first type expression of s (brackets and quotes may hold spaces).
local function first_type(s)
    local depth, quote = 0, nil
    for i = 1, #s do
        local c = s:sub(i, i)
        if quote then
            if c == quote then quote = nil end
        elseif c == '"' or c == "'" then
            quote = c
        elseif c == "(" or c == "<" or c == "{" then
            depth = depth + 1
        elseif c == ")" or c == ">" or c == "}" then
            depth = depth - 1
        elseif c:match("%s") and depth == 0 then
            return s:sub(1, i - 1)
        end
    end
    return s
end

-- { classes = { [name] = { parent =, fields = { [f] = { type =, optional = } }, order = {...} } },
--   aliases = { [name] = type }, refs = { "cozmox.X", ... }, methods = { [file] = { names } } }
local function parse()
    local classes, aliases, refs = {}, {}, {}
    for _, file in ipairs(SOURCES) do
        local current
        for line in (util.read(root .. "/" .. file) .. "\n"):gmatch("(.-)\n") do
            local name, parent = line:match("^%-%-%-@class%s+([%w_.]+)%s*:?%s*([%w_.]*)")
            if name then
                assert(classes[name] == nil, "class defined twice: " .. name)
                current = { parent = parent ~= "" and parent or nil, fields = {}, order = {}, file = file }
                classes[name] = current
            elseif line:match("^%-%-%-@alias") then
                local a, t = line:match("^%-%-%-@alias%s+([%w_.]+)%s+(.*)$")
                aliases[a] = first_type(t)
                current = nil
            elseif line:match("^%-%-%-@field") then
                local f, opt, rest = line:match("^%-%-%-@field%s+([%w_]+)(%??)%s+(.*)$")
                assert(f and current, "a @field outside a class in " .. file .. ": " .. line)
                assert(current.fields[f] == nil, "field defined twice: " .. f)
                current.fields[f] = { type = first_type(rest), optional = opt == "?" }
                current.order[#current.order + 1] = f
            elseif not line:match("^%-%-%-") then
                current = nil
            end
            if line:match("^%-%-%-@") then
                for ref in line:gmatch("cozmox%.[A-Z][%w_]*") do refs[#refs + 1] = { name = ref, file = file } end
            end
        end
    end
    return { classes = classes, aliases = aliases, refs = refs }
end

local A = parse()

-- Field names of a class, those of its parents included.
local function field_names(name)
    local out, seen = {}, {}
    local c = A.classes[name]
    assert(c, "no class " .. name)
    while c do
        for _, f in ipairs(c.order) do
            if not seen[f] then seen[f] = true; out[#out + 1] = f end
        end
        c = c.parent and A.classes[c.parent]
    end
    table.sort(out)
    return out
end

local function field(class, f)
    local c = A.classes[class]
    while c do
        if c.fields[f] then return c.fields[f] end
        c = c.parent and A.classes[c.parent]
    end
end

local function sorted_keys(t)
    local out = {}
    for k in pairs(t) do out[#out + 1] = k end
    table.sort(out)
    return out
end

local fixture = cozmox.json.decode(util.fixture("session.json"))

-- Whether the annotated type t admits the JSON value v (of the fixture);
-- class types are checked by check_object, through `nested`.
local check_object
local function admits(t, v, where, visited)
    t = t:gsub("^%((.*)%)$", "%1")
    if A.aliases[t] then return admits(A.aliases[t], v, where, visited) end
    local options = {}
    for alt in t:gmatch("[^|]+") do options[#options + 1] = alt end
    if #options > 1 then
        for _, alt in ipairs(options) do
            if admits(alt, v, where, visited) then return true end
        end
        return false
    end
    local kind = type(v)
    if kind == "string" then
        return t == "string" or t == '"' .. v .. '"'
    elseif kind == "number" then
        if t == "number" then return true end
        if t ~= "integer" then return false end
        if math.type then return math.type(v) == "integer" end
        return v == math.floor(v)
    elseif kind == "boolean" then
        return t == "boolean"
    elseif kind == "table" and getmetatable(v) == cozmox.array_mt then
        local elem = t:match("^(.-)%[%]$")
        if not elem then return t == "table" end
        for i, item in ipairs(v) do
            if not admits(elem, item, where .. "[" .. i .. "]", visited) then return false end
        end
        return true
    elseif kind == "table" then
        if t == "table" or t:match("^table<") then return true end
        if A.classes[t] then
            check_object(t, v, where, visited)
            return true
        end
    end
    return false
end

-- The object must have exactly the class's fields, each of an admitted type.
function check_object(class, object, where, visited)
    visited[class] = true
    assert.same(sorted_keys(object), field_names(class), where .. " (" .. class .. ")")
    for k, v in pairs(object) do
        local f = field(class, k)
        local at = where .. "." .. k
        if v == cozmox.null then
            assert(f.optional, at .. " is null in the example, so " .. class .. "." .. k .. " must be optional")
        else
            assert(admits(f.type, v, at, visited), at .. ": type " .. f.type .. " does not admit the example value")
        end
    end
end

describe("LuaLS annotations", function()
    it("describe the session and its nested objects with exactly the API's fields and types", function()
        local visited = {}
        check_object("cozmox.Session", fixture, "session", visited)
        for _, class in ipairs({ "cozmox.Session", "cozmox.Assistant", "cozmox.Transcriber", "cozmox.Model",
            "cozmox.ModelMessage", "cozmox.Voice", "cozmox.Message", "cozmox.Customer", "cozmox.AssistantOverrides",
            "cozmox.PhoneNumber" }) do
            assert(visited[class], class .. " was not checked against the example")
        end
        -- the overrides are an assistant plus variableValues
        assert.equal("cozmox.Assistant", A.classes["cozmox.AssistantOverrides"].parent)
    end)

    it("reject what does not fit (the checker itself works)", function()
        assert.is_false(admits("integer", 0.5, "x", {}))
        assert.is_false(admits("string", 1, "x", {}))
        assert.is_false(admits("string[]", cozmox.json.decode("[1]"), "x", {}))
        assert.is_true(admits("string|number", 1, "x", {}))
        assert.is_true(admits("cozmox.SessionStatus", "active", "x", {}))
        assert.is_false(admits("cozmox.SessionStatus", "paused", "x", {}))
        assert.has_error(function()
            check_object("cozmox.Message", { role = "user", message = "m", time = 1 }, "m", {})
        end)
        assert.has_error(function()
            check_object("cozmox.Message", { role = "user", message = "m", time = 1, secondsFromStart = 1, x = 1 },
                "m", {})
        end)
    end)

    it("mark as required only what the example always has", function()
        -- the session's identity and times are always there; so are a message's four fields
        for _, f in ipairs({ "id", "orgId", "createdAt", "updatedAt" }) do
            assert.is_false(field("cozmox.Session", f).optional, f)
        end
        for _, f in ipairs({ "name", "status", "expirationSeconds", "assistant", "messages" }) do
            assert.is_true(field("cozmox.Session", f).optional, f)
        end
        assert.equal("cozmox.SessionStatus", field("cozmox.Session", "status").type)
        assert.equal('"active"|"completed"', A.aliases["cozmox.SessionStatus"])
        assert.equal("cozmox.SessionMethods", A.classes["cozmox.Session"].parent)
    end)

    it("refer only to classes and aliases that exist", function()
        assert.is_true(#A.refs > 50)
        for _, r in ipairs(A.refs) do
            assert(A.classes[r.name] or A.aliases[r.name],
                r.file .. " refers to " .. r.name .. ", which is not defined")
        end
    end)

    it("match the code: resource functions, helpers, list params, body fields", function()
        local fns = field_names("cozmox.SessionResource")
        local want = {}
        for i, f in ipairs(session.FUNCTIONS) do want[i] = f end
        table.sort(want)
        assert.same(want, fns)
        assert.same(sorted_keys(session.LIST_PARAMS), field_names("cozmox.SessionListParams"))
        assert.same(sorted_keys(session.BODY_FIELDS), field_names("cozmox.SessionBody"))
        -- helpers: every method of session.methods is defined under the class annotation
        local src = util.read(root .. "/lua/cozmox/session.lua")
        assert.matches("%-%-%-@class cozmox%.SessionMethods\nlocal methods = {}", src)
        local defined = {}
        for m in src:gmatch("\nfunction methods:([%w_]+)%(") do defined[#defined + 1] = m end
        table.sort(defined)
        assert.same(sorted_keys(session.methods), defined)
        assert.equal(10, #defined)
        -- each helper's annotation block has its @return (is_active .. customer_number)
        for _, m in ipairs(defined) do
            local block = src:match("\n(%-%-%-[^\n]*\n[%-%s%S]-)function methods:" .. m .. "%(")
            assert(block and block:match("%-%-%-@return"), "no @return for " .. m)
        end
    end)

    it("match the code: client options, error fields, list pages", function()
        local options = {}
        for _, spec in ipairs(require("cozmox.options").SPECS) do options[#options + 1] = spec.name end
        table.sort(options)
        assert.same(options, field_names("cozmox.ClientOptions"))

        local documented = field_names("cozmox.Error")
        local have = {}
        for _, f in ipairs(documented) do have[f] = true end
        local samples = {
            errors.http(400, { message = { "a", "b" }, error = "Bad Request", statusCode = 400 }, nil, "GET", "/x"),
            errors.http(502, nil, "<html>", "GET", "/x"),
            errors.new({ kind = "network", message = "refused", curl_code = 7, method = "GET", path = "/x",
                attempts = 3 }),
        }
        for _, e in ipairs(samples) do
            for k in pairs(e) do assert(have[k], "error field " .. k .. " is not annotated") end
        end
        -- README's table of error fields names the same ones
        local readme = util.read(root .. "/README.md")
        local errors_section = assert(readme:match("\n## Errors\n(.-)\n## "))
        for name in errors_section:gmatch("\n| `([%w_]+)`") do
            assert(have[name], "README documents err." .. name .. ", which is not annotated")
        end
        local kinds = {}
        for k in A.aliases["cozmox.ErrorKind"]:gmatch('"([%w_]+)"') do kinds[#kinds + 1] = k end
        assert.same({ "http", "timeout", "network", "tls", "decode", "too_large", "memory", "config", "closed" }, kinds)

        local mock = require("support.mock")
        local c = cozmox.new({ token = mock.token, base_url = mock.base_url })
        local page = assert(c.session.list({ limit = 1 }))
        assert.same(sorted_keys(page), field_names("cozmox.SessionListPage"))
        assert.same(sorted_keys(page.metadata), field_names("cozmox.PaginationMeta"))
        c:close()
    end)

    it("load as a module that does nothing", function()
        assert.same({}, require("cozmox.types"))
    end)

    it("pass lua-language-server --check, when it is installed", function()
        local found = util.run("command -v lua-language-server || true")
        if not found:match("%S") then
            pending("lua-language-server is not installed (no Debian 12 package); the checks above stand in for it")
            return
        end
        local log = os.tmpname()
        local out, ok = util.run("cd '" .. root .. "' && lua-language-server --check lua/cozmox --checklevel=Warning"
            .. " --logpath '" .. log .. "'")
        util.run("rm -rf '" .. log .. "'")
        assert(ok, out)
        assert.matches("no problems found", out, 1, true)
    end)
end)
