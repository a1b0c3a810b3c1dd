--- cozmox.transport.haproxy: HTTP through HAProxy's own client,
--  core.httpclient() (HAProxy 2.6+), for Lua running inside HAProxy (see
--  cozmox.transport for the contract; cozmox.loop.haproxy() makes it).
--
-- Why core.httpclient() and not core.tcp(): HAProxy's Lua sockets cannot
-- verify a TLS certificate (connect_ssl is "verify none") and cannot
-- resolve a host name; the httpclient verifies the chain against
-- httpclient.ssl.ca-file (the system CAs by default) and the name against
-- the Host (sent as SNI), and resolves names through HAProxy's resolvers.
-- An API token must not travel over an unverified connection, so this
-- is the only choice that is safe for https://.
--
-- How a request runs without blocking: it is a job run by its own HAProxy
-- task (core.register_task), which calls the httpclient and keeps the
-- answer in the job.  The caller -- a service, an action, a task or a CLI
-- command registered after require("cozmox") ("where to wait" below:
-- anywhere else the call is a "config" failure before any job starts) --
-- polls its jobs with core.msleep (1 ms, then doubling up to 10 ms), which
-- yields: the thread serves everything else meanwhile.  A job not
-- done at its request's deadline is a "timeout" at once, whatever the
-- server does (trickling, stalling, a connect that hangs): the deadline
-- bounds the whole request.  The abandoned job ends in the background.
--
-- What the httpclient hands back -- status, headers, the whole body --
-- goes to the response sink like every transport's bytes (gzip and
-- deflate are asked for and undone there; the limits apply there).  It
-- reports no failure as such: when no usable answer came, HAProxy
-- answers itself with one of its 502/503/504 pages (or an empty 503 for
-- a host name it could not resolve; an IP address it does not resolve, so
-- an empty 503 from one is the server's).  Those are recognised -- exactly
-- HAProxy's headers (no Date, which origin servers send) and its text --
-- and become the failures curl would report.  A body shorter than its
-- Content-Length is a "network" failure (code 18).
--
-- What HAProxy 2.6 cannot do, and what happens then (see the README):
--   * PATCH (the httpclient has GET, HEAD, PUT, POST, DELETE): "config".
--   * ca_file, ca_path, insecure, proxy per client: "config" -- TLS is
--     set for the whole process in haproxy.cfg's global section
--     (httpclient.ssl.ca-file, httpclient.ssl.verify).
--   * Why a connection failed: refused, unreachable, or a certificate
--     that was not trusted all give the same 503 page (HAProxy's log line
--     for the <HTTPCLIENT> proxy says which).
--   * A chunked body cut short is not told apart from a whole one: it
--     fails to decode instead ("decode").
--   * The body is received whole before the sink sees it, so
--     max_response_bytes bounds what is decoded, not what HAProxy buffers
--     (tune.lua.maxmem bounds that: past it the call is kind "memory").
--   * HAProxy itself sends a request again (3 times) after a failed
--     connect, a connection closed without an answer, or its server
--     timeout.  A POST's server timeout is therefore long -- the time
--     left, at least 5 minutes -- so that a slow POST is not sent twice.
--     This goes on after the caller gave up at its deadline (a stalled
--     GET is sent 4 times in all, each after the time left + 1 s): the
--     Lua httpclient of 2.6 cannot abort a request, and 2.6 has no
--     setting for its retries (httpclient.retries came in later versions).
--   * An empty 503 (only Content-Length: 0) from a server behind a host
--     name looks exactly like the answer for a name not resolved: it is
--     taken for that (code 6).
local core = require("cozmox.core")
local transport = require("cozmox.transport")
local IDEMPOTENT = require("cozmox.retry").IDEMPOTENT

local type, tostring, tonumber, pairs, ipairs, setmetatable, pcall =
    type, tostring, tonumber, pairs, ipairs, setmetatable, pcall
local str_lower, str_find, str_format, str_match, str_gsub =
    string.lower, string.find, string.format, string.match, string.gsub
local concat, sort, math_min, math_max, math_ceil = table.concat, table.sort, math.min, math.max, math.ceil
local co_isyieldable = coroutine.isyieldable -- nil on Lua 5.1 (HAProxy runs 5.3+)
local getinfo = debug and debug.getinfo
local select, error = select, error
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- unpack: Lua 5.1
local new_sink, now = core.sink, core.now
local failure, parse_url, split_header = transport.failure, transport.parse_url, transport.split_header
local closed_record = transport.closed

local _M = {}

-- HTTP method -> the httpclient's method of that name.
local METHODS = { GET = "get", HEAD = "head", PUT = "put", POST = "post", DELETE = "delete" }

local POLL_FIRST_MS, POLL_MAX_MS = 1, 10
-- The httpclient's server timeout for a job.  It only decides when a job
-- the caller gave up on ends (our deadline comes first), but HAProxy sends
-- the request again after it: for GET, HEAD, PUT, DELETE it is the time
-- left and a little more; for POST the time left, and at least 5 minutes.
local SERVER_TIMEOUT_SLACK_MS, SERVER_TIMEOUT_MIN_MS = 1000, 300000

-- Settings the httpclient can only take from haproxy.cfg.
local GLOBAL_ONLY = {
    { "ca_file", "httpclient.ssl.ca-file <bundle file>" },
    { "ca_path", "httpclient.ssl.ca-file <bundle file>" },
    { "insecure", "httpclient.ssl.verify none" },
    { "proxy", "nothing: HAProxy 2.6's httpclient cannot use a proxy" },
}

local Haproxy = {}
Haproxy.__index = Haproxy

local secrets = setmetatable({}, { __mode = "k" })

-- ------------------------------------------------------------ where to wait
--
-- core.msleep (and the job tasks it waits for) work only in a coroutine
-- HAProxy itself resumes and lets yield: a service's, an action's or a
-- task's.  Nothing in HAProxy 2.6's Lua tells those apart from the rest:
-- a sample fetch or a converter runs in a coroutine of HAProxy's too
-- (coroutine.isyieldable() is true there) but HAProxy refuses its yield
-- ("yield not allowed"), and in a coroutine of the user's own msleep
-- does not yield while register_task + msleep crash HAProxy (SIGSEGV).
-- So install() wraps core.register_service, register_action and
-- register_task: the function HAProxy gets calls the user's from a frame
-- of ours (WAITERS), and a call may wait only when that frame is on the
-- running coroutine's stack -- a coroutine of the user's own has a stack
-- of its own, without it; a fetch or converter never has it.

local WAITERS = setmetatable({}, { __mode = "k" }) -- the wrappers HAProxy runs
local installed = setmetatable({}, { __mode = "k" }) -- core tables wrapped

-- fn called from a frame of ours (not a tail call: the frame stays on the
-- stack as long as fn runs, yields included).
local function waiter(fn)
    if type(fn) ~= "function" then return fn end -- HAProxy's own check complains
    local function w(...)
        local r = pack(fn(...))
        return unpack(r, 1, r.n)
    end
    WAITERS[w] = true
    return w
end

--- Wrap hap's register_service, register_action, register_task and
--  register_cli (once per core table) so that the functions registered
--  from now on may wait.  Run by require("cozmox") inside HAProxy, and
--  again (a no-op then) when the adapter or the transport is made.
function _M.install(hap)
    if installed[hap] then return end
    installed[hap] = true
    local service, action, task, cli = hap.register_service, hap.register_action, hap.register_task,
        hap.register_cli
    if type(service) == "function" then
        hap.register_service = function(name, mode, fn, ...) return service(name, mode, waiter(fn), ...) end
    end
    if type(action) == "function" then
        hap.register_action = function(name, actions, fn, ...) return action(name, actions, waiter(fn), ...) end
    end
    if type(task) == "function" then
        hap.register_task = function(fn, ...) return task(waiter(fn), ...) end
    end
    if type(cli) == "function" then
        hap.register_cli = function(path, usage, fn, ...) return cli(path, usage, waiter(fn), ...) end
    end
end

-- May the running code wait (core.msleep) here?
local function can_wait()
    if co_isyieldable and not co_isyieldable() then return false end
    if not getinfo then return true end -- no debug library: cannot tell
    local level = 2
    while true do
        local info = getinfo(level, "f")
        if not info then return false end
        if WAITERS[info.func] then return true end
        level = level + 1
    end
end

local CANNOT_WAIT = "cannot wait here: inside HAProxy the client works only in services, actions, tasks "
    .. "and CLI commands registered (core.register_service, core.register_action, core.register_task, "
    .. "core.register_cli) after require(\"cozmox\") -- not while a file is loaded, in a sample fetch or "
    .. "a converter, or in a coroutine of your own (HAProxy cannot resume it)"

--- new(s, secret, hap): hap is HAProxy's `core` table.
function _M.new(s, secret, hap)
    _M.install(hap)
    local ok, info = pcall(hap.get_info)
    local version = ok and type(info) == "table" and info.Version
    local t = setmetatable({ hap = hap, s = s, user_agent = transport.user_agent(s,
        type(version) == "string" and ("HAProxy/" .. str_match(version, "^[%w.]+")) or "HAProxy") }, Haproxy)
    for _, pair in ipairs(GLOBAL_ONLY) do
        local name, instead = pair[1], pair[2]
        if s[name] ~= nil and s[name] ~= false then
            t.unsupported = "option '" .. name .. "' cannot be applied per client inside HAProxy; "
                .. "set it in haproxy.cfg's global section instead: " .. instead
            break
        end
    end
    secrets[t] = secret and str_match(secret.auth, "^Authorization: (.*)$")
    return t
end

-- ------------------------------------------------------------ request

-- The httpclient's request table: url, headers ({ name = { values } }),
-- body, timeout (its "timeout server", ms).
function Haproxy:request_table(req)
    local auth = secrets[self]
    local h = { accept = { "application/json" }, ["user-agent"] = { self.user_agent },
        ["accept-encoding"] = { "gzip, deflate" } }
    if auth and not req.no_auth then h.authorization = { auth } end
    for _, line in ipairs(req.headers or {}) do -- the caller's win (one line per name)
        local name, value = split_header(line)
        h[str_lower(name)] = { value }
    end
    local body = req.body
    if body then
        h["content-type"] = { "application/json" }
        h["content-length"] = { tostring(#body) }
    elseif req.method ~= "GET" and req.method ~= "HEAD" then
        h["content-length"] = { "0" }
    end
    local left_ms = math_ceil((req.deadline - now()) * 1000)
    local timeout = IDEMPOTENT[req.method] and (left_ms + SERVER_TIMEOUT_SLACK_MS)
        or math_max(left_ms, SERVER_TIMEOUT_MIN_MS)
    return { url = req.url, headers = h, body = body, timeout = timeout }
end

-- A failure for a request this transport cannot send, or nil.
function Haproxy:refusal(req)
    if self.closed then return closed_record() end
    if self.unsupported then return failure("config", self.unsupported, 4) end
    if not METHODS[req.method] then
        return failure("config", "HAProxy's httpclient cannot send " .. tostring(req.method)
            .. " requests (it has GET, HEAD, PUT, POST and DELETE)", 4)
    end
    if not parse_url(req.url) then
        return failure("config", "unsupported URL: only http:// and https:// are allowed", 1)
    end
    if not can_wait() then return failure("config", CANNOT_WAIT, 4) end
    return nil
end

-- Start req as a job in its own task; the task fills the job in.
function Haproxy:start(req)
    local hap, args = self.hap, self:request_table(req)
    local method = METHODS[req.method]
    -- every field there from the start: filling it in allocates nothing
    local job = { t0 = now(), ok = false, res = false, t1 = 0, done = false }
    hap.register_task(function()
        local ok, res = pcall(function()
            local hc = hap.httpclient()
            return hc[method](hc, args)
        end)
        job.ok, job.res, job.t1, job.done = ok, res, now(), true
    end)
    return job
end

-- ------------------------------------------------------------ response

-- The httpclient's headers, { name = { [0] = v1, [1] = v2 } } (HAProxy
-- 2.6 counts from 0), as the contract's { name = "v1, v2" }.
local function joined_headers(hh)
    local out = {}
    if type(hh) ~= "table" then return out end
    for name, values in pairs(hh) do
        if type(name) == "string" and type(values) == "table" then
            local parts, i = {}, values[0] ~= nil and 0 or 1
            while values[i] ~= nil do
                parts[#parts + 1] = tostring(values[i])
                i = i + 1
            end
            out[str_lower(name)] = concat(parts, ", ")
        end
    end
    return out
end

-- HAProxy's own pages (its built-in defaults) by status, and what each
-- stands for: a message, the kind, curl's code.
local function own_page(status, title, text)
    return "<html><body><h1>" .. status .. " " .. title .. "</h1>\n" .. text .. "\n</body></html>\n"
end
local OWN_PAGES = {
    [502] = { own_page(502, "Bad Gateway", "The server returned an invalid or incomplete response."),
        "the server sent an invalid or incomplete response", "network", 8 },
    [503] = { own_page(503, "Service Unavailable", "No server is available to handle this request."),
        "could not connect", "network", 7 },
    [504] = { own_page(504, "Gateway Time-out", "The server didn't respond in time."),
        "the server did not answer within HAProxy's server timeout", "timeout", 28 },
}

-- Header names in h, sorted, joined with " ".
local function names(h)
    local list = {}
    for k in pairs(h) do list[#list + 1] = k end
    sort(list)
    return concat(list, " ")
end

-- The host of an http(s) URL spelled as in the URL (parse_url's is
-- lower-case): messages show what the caller gave, so that a scrubber
-- looking for a secret finds it as it was written.  IPv6 without brackets.
local function url_host(url)
    local authority = str_match(url, "^[%a][%w+.-]*://([^/?#]*)") or ""
    return str_match(authority, "^%[([%x:.]+)%]") or str_match(authority, "^([^:]*)")
end

-- Is host (from parse_url) an IP address literal?
local function is_ip(host)
    return str_match(host, "^%d+%.%d+%.%d+%.%d+$") ~= nil or str_find(host, ":", 1, true) ~= nil
end

-- The failure an answer HAProxy wrote itself stands for, or nil when the
-- answer came from the server.  HAProxy's answers carry exactly its
-- headers and page (and no Date, which origin servers send); only an
-- HAProxy in front of the API, answering its own 503 page, looks the same
-- (and means much the same: no server there).  The empty 503 of a name
-- HAProxy could not resolve comes only for a name: for an IP address it
-- resolves nothing, so such an answer is the server's.
local function own_answer(status, h, body, url)
    local _, lower, port = parse_url(url)
    local host = url_host(url)
    if status == 503 and body == "" and names(h) == "content-length" and not is_ip(lower) then
        return failure("network", "could not resolve " .. host .. " (HAProxy resolves names only through "
            .. "its resolvers section -- httpclient.resolvers.id, \"default\" unless set -- and only by DNS)", 6)
    end
    local page = OWN_PAGES[status]
    if not page or body ~= page[1] or names(h) ~= "cache-control content-length content-type" then return nil end
    local what = page[2]
    if status == 503 then
        local where = (str_find(host, ":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. port
        what = what .. " to " .. where .. " (connection refused or unreachable"
            .. (str_find(url, "^[Hh][Tt][Tt][Pp][Ss]:") and ", or a TLS handshake that failed: a certificate "
                .. "not trusted by httpclient.ssl.ca-file or not matching " .. host or "")
            .. "; HAProxy's log line for <HTTPCLIENT> says which)"
    end
    return failure(page[3], "HAProxy's httpclient: " .. what, page[4])
end

function Haproxy:record(req, job, want_meta)
    if not job.done then
        return failure("timeout", "the timeout was reached before HAProxy's httpclient had the response", 28)
    end
    local res = job.res
    if not job.ok or type(res) ~= "table" then
        local msg = str_gsub(tostring(res), "^[^:\n]+:%d+: ", "") -- no "file:line: " of the call
        if str_find(msg, "not enough memory", 1, true) then
            return failure("memory", "HAProxy's httpclient: " .. msg, 27)
        end
        return failure("network", "HAProxy's httpclient failed: " .. msg, 7)
    end
    local status = tonumber(res.status)
    local body = type(res.body) == "string" and res.body or ""
    local h = joined_headers(res.headers)
    if not status or status < 100 then
        return failure("network", "HAProxy's httpclient got no response", 56)
    end
    local own = own_answer(status, h, body, req.url)
    if own then return own end

    local rec = { status = status, headers = h, code = 0, started = true }
    local sink = new_sink(self.s.max_response_bytes, self.s.max_depth, self.s.json_big_integers)
    sink:begin(status, h["content-encoding"])
    local length = str_match(h["content-length"] or "", "^%s*(%d+)%s*$")
    local short = req.method ~= "HEAD" and status ~= 204 and status ~= 304 and length and #body < tonumber(length)
    if body ~= "" then sink:feed(body) end
    if short then
        rec.kind, rec.code = "network", 18
        rec.message = str_format("body shorter than its Content-Length (%d of %s bytes)", #body, length)
    end
    sink:finish(rec, short and true or false)
    if want_meta then
        local total = job.t1 - job.t0
        local _, host = parse_url(req.url)
        rec.meta = { status = status, headers = h, http_version = "1.1", bytes = rec.bytes,
            primary_ip = is_ip(host) and host or "",
            redirects = 0, timings = { namelookup = 0, connect = 0, tls = 0, first_byte = total, total = total } }
    end
    return rec
end

-- ------------------------------------------------------------ perform

-- f(...)'s result, or the "memory" failure when Lua ran out of memory in
-- it (tune.lua.maxmem): building a request, the sink's work on a whole
-- body.  Any other error is a bug and is raised again.
local function guarded(f, ...)
    local ok, res = pcall(f, ...)
    if ok then return res end
    if type(res) == "string" and str_find(res, "not enough memory", 1, true) then
        return failure("memory", "Lua ran out of memory (HAProxy's tune.lua.maxmem)", 27)
    end
    error(res, 0)
end

-- At most `concurrency` jobs at once; the caller polls them with
-- core.msleep until each is done or past its deadline.
function Haproxy:perform_many(reqs, concurrency, want_meta)
    local hap, n = self.hap, #reqs
    local out, jobs, first, nexti, running = {}, {}, 1, 1, 0
    local step = POLL_FIRST_MS
    while true do
        while running < concurrency and nexti <= n do
            local req = reqs[nexti]
            local refused = guarded(self.refusal, self, req) -- (its stack walk allocates)
            if not refused and now() >= req.deadline then
                refused = failure("timeout", "the timeout was reached before the request could start", 28)
            end
            local job = not refused and guarded(self.start, self, req)
            if job and job.kind then refused = job end -- out of memory
            if refused then out[nexti] = refused else
                jobs[nexti] = job
                running = running + 1
            end
            nexti = nexti + 1
        end
        for i = first, nexti - 1 do
            local job = jobs[i]
            if job and (job.done or now() >= reqs[i].deadline or self.closed) then
                out[i] = self.closed and not job.done and closed_record()
                    or guarded(self.record, self, reqs[i], job, want_meta)
                jobs[i], running = nil, running - 1
                step = POLL_FIRST_MS
            end
        end
        while first < nexti and out[first] do first = first + 1 end
        if running == 0 and nexti > n then return out end
        hap.msleep(step)
        step = math_min(step * 2, POLL_MAX_MS)
    end
end

function Haproxy:perform(req, want_meta)
    return self:perform_many({ req }, 1, want_meta)[1]
end

--- Calls waiting on jobs end with kind "closed" at their next poll (the
--  jobs end in the background: nothing to release); nothing starts after.
function Haproxy:close()
    self.closed = true
end

return _M
