--- The fault matrix: one table of fault routes and the outcome every
--  transport must give for each -- curl, curl multi (get_many), nginx
--  cosockets and a custom transport function.  spec/matrix_spec.lua runs
--  it for the first, second and fourth in busted and for cosockets inside
--  a real nginx (spec/nginx/app.lua runs the same cases there).
--
--  A case: name, id (a /fault/by-id session id: the route and its
--  arguments; "$KEY" becomes a key of its own per run), or ids (several
--  calls on one client, in order); where (which server: "faults" (default)
--  the mock's /fault/by-id routes over HTTP, "tls" the same over verified
--  HTTPS, "rogue" a certificate from another CA, "wrong_host" a
--  certificate for another name, "refused" a closed port); opts (client
--  options; every case gets max_retry_wait = 0 and a sleep that only
--  records its waits); expect: ok (a session with the asked id came back)
--  or kind/status/code, attempts, waits (the recorded waits), max/min
--  elapsed seconds, message (a plain substring), snippet (an error
--  snippet is there); a failure never carries a value.  custom: what a
--  transport function gives instead ("lenient": its HTTP client parses
--  the response, so only "no raise, no data with a failure" is checked; or
--  another expect table).
local _M = {}

local MB = 1024 * 1024

_M.cases = {
    -- statuses and retries
    { name = "200", id = "ok", expect = { ok = true, attempts = 1 } },
    { name = "404, not retried", id = "status?code=404", expect = { kind = "http", status = 404, attempts = 1 } },
    { name = "500 retried to the end", id = "status?code=500&key=$KEY",
      expect = { kind = "http", status = 500, attempts = 3, waits = 2 } },
    { name = "503 once, then the session", id = "503-once?key=$KEY", expect = { ok = true, attempts = 2, waits = 1 } },
    { name = "429 with Retry-After, waited as asked", id = "429?n=1&key=$KEY&retry_after=7",
      opts = { max_retry_wait = 60 }, expect = { ok = true, attempts = 2, wait_values = { 7 } } },
    { name = "429 with a wait beyond the timeout: not retried", id = "429?n=1&key=$KEY&retry_after=30",
      opts = { max_retry_wait = 60, timeout = 5 }, expect = { kind = "http", status = 429, attempts = 1 } },
    { name = "HTML 502: http with a snippet", id = "html502", opts = { max_retries = 0 },
      expect = { kind = "http", status = 502, snippet = true } },
    -- bodies
    { name = "gzip", id = "gzip", expect = { ok = true } },
    { name = "deflate", id = "deflate", expect = { ok = true } },
    { name = "a route that insists on gzip", id = "gzip-only", expect = { ok = true },
      -- a transport function is asked for identity: the function's client
      -- may not give raw bytes of anything else
      custom = { kind = "http", status = 406 } },
    { name = "gzip bomb cut at the limit", id = "gzip-bomb", opts = { max_response_bytes = 4 * MB },
      expect = { kind = "too_large", max_elapsed = 20 } },
    { name = "body over max_response_bytes", id = "big?mb=3", opts = { max_response_bytes = MB },
      expect = { kind = "too_large" } },
    { name = "2xx that is not JSON", id = "raw?head=bad-json", expect = { kind = "decode", status = 200 } },
    { name = "gzip with garbage after it", id = "raw?head=gzip-trailing", expect = { kind = "decode" } },
    { name = "gzip cut short", id = "raw?head=gzip-truncated", expect = { kind = "decode" } },
    { name = "nesting over max_depth", id = "ok", opts = { max_depth = 3 },
      expect = { kind = "decode", message = "max_depth" } },
    -- broken exchanges: network, not retried once the response started
    { name = "reset mid-body", id = "reset", expect = { kind = "network", attempts = 1 } },
    { name = "body shorter than Content-Length", id = "short-body", expect = { kind = "network", attempts = 1 } },
    { name = "chunked, cut", id = "chunked-truncated", expect = { kind = "network", attempts = 1 } },
    { name = "chunked, size not hex", id = "chunked-malformed", expect = { kind = "network" } },
    { name = "chunk size line not hex after data", id = "raw?head=chunk-size-bad", expect = { kind = "network" } },
    { name = "chunk size beyond any number", id = "raw?head=chunk-size-huge", expect = { kind = "network" } },
    { name = "status code of four digits", id = "raw?head=status-2000", expect = { kind = "network" },
      custom = "lenient" },
    { name = "status line without a code", id = "raw?head=status-none", expect = { kind = "network" },
      custom = "lenient" },
    { name = "two equal Content-Length headers", id = "raw?head=length-same", expect = { ok = true } },
    { name = "two different Content-Length headers", id = "raw?head=length-differ", expect = { kind = "network" },
      custom = "lenient" },
    { name = "a 1 MB header line", id = "raw?head=header-1mb", expect = { kind = "network", message = "header" },
      custom = "lenient" },
    { name = "a 200 KB reason phrase", id = "raw?head=reason-200kb", expect = { kind = "network", message = "header" },
      custom = "lenient" },
    { name = "20,000 repeated headers (440 KB)", id = "raw?head=header-repeats",
      expect = { kind = "network", message = "header", max_elapsed = 2 }, custom = "lenient" },
    { name = "40,000 blanks inside header values: read in linear time", id = "raw?head=blank-runs",
      opts = { timeout = 2 }, expect = { ok = true, max_elapsed = 1 } },
    { name = "a 60,000-digit X-RateLimit-Reset: ignored at once", id = "raw?head=reset-digits",
      opts = { timeout = 2, max_retries = 1 }, expect = { kind = "http", status = 503, max_elapsed = 1 } },
    { name = "a head and lines ending in a bare LF", id = "raw?head=bare-lf", expect = { ok = true, max_elapsed = 1 } },
    { name = "a status code below 100", id = "raw?head=status-099", expect = { kind = "network" },
      custom = "lenient" },
    { name = "an empty body in a coding nobody asked for", id = "raw?head=empty-br",
      expect = { kind = "decode", message = "empty response body" } },
    { name = "a chunked body with a trailer section", id = "raw?head=trailers", expect = { ok = true } },
    { name = "two Location headers: not followed", id = "raw?head=two-locations", opts = { follow_redirects = true },
      expect = { kind = "network", code = 8 } },
    { name = "a Location with a space: not followed", id = "redirect?to=/fault/by-id/session/o k",
      opts = { follow_redirects = true }, expect = { kind = "network", code = 8 } },
    { name = "a header line without a colon", id = "raw?head=header-garbage", expect = { kind = "network" },
      custom = "lenient" },
    -- connections
    { name = "a pooled connection dropped by the server", ids = { "drop-next", "ok", "ok" },
      expect = { ok = true, attempts = 1 } },
    { name = "connection refused: retried", where = "refused", id = "ok",
      expect = { kind = "network", attempts = 3, code = 7 } },
    -- time
    { name = "slow body within the timeout", id = "slow?ms=600", expect = { ok = true } },
    { name = "stall after the headers: timeout, whole call bounded", id = "stall?s=10", opts = { timeout = 1 },
      expect = { kind = "timeout", min_elapsed = 0.9, max_elapsed = 1.6, attempts = 1 } },
    { name = "body trickled byte by byte: timeout = 2 ends it", id = "trickle?ms=100&bytes=60",
      opts = { timeout = 2 }, expect = { kind = "timeout", min_elapsed = 1.9, max_elapsed = 2.7 } },
    { name = "timeout bounds the retries too", id = "status?code=503&key=$KEY",
      opts = { timeout = 1.5, real_sleep = 0.6, max_retries = 10 }, expect = { kind = "http", status = 503,
          max_elapsed = 2.1 } },
    -- redirects
    { name = "redirects not followed unless asked", id = "redirect?to=/fault/by-id/session/ok",
      expect = { kind = "http", status = 302 } },
    { name = "redirect on the same origin followed", id = "redirect?to=/fault/by-id/session/ok",
      opts = { follow_redirects = true }, expect = { ok_id = "ok" } },
    { name = "redirect to another origin: no Authorization", id = "redirect?to=$LOCALHOST/session/demo",
      opts = { follow_redirects = true }, expect = { kind = "http", status = 401 } },
    { name = "redirect loop: at most 5", id = "redirect-loop", opts = { follow_redirects = true },
      expect = { kind = "network", code = 47 } },
    { name = "redirect to file://", id = "redirect?to=file:///etc/passwd", opts = { follow_redirects = true },
      expect = { kind = "network", code = 1 } },
    { name = "redirect from https to http refused", where = "tls", id = "redirect?to=$HTTP/fault/by-id/session/ok",
      opts = { follow_redirects = true }, expect = { kind = "tls" } },
    { name = "redirect from https to http when allowed", where = "tls", id = "redirect?to=$HTTP/fault/by-id/session/ok",
      opts = { follow_redirects = true, allow_insecure_redirects = true }, expect = { ok_id = "ok" } },
    -- what a failed call leaves behind, and what a server's text can do
    { name = "too_large on tiny containers: nothing kept after the call", id = "tiny?mb=8",
      opts = { max_response_bytes = 2000000 }, heap = true, expect = { kind = "too_large", max_heap_kb = 2048 } },
    { name = "a decode error at the end of 4 MB: nothing kept after the call", id = "tiny?mb=4&broken=1",
      heap = true, expect = { kind = "decode", max_heap_kb = 2048 } },
    { name = "a server echoing the token in its message", id = "echo-auth",
      expect = { kind = "http", status = 401, no_secret = true } },
    { name = "a server echoing the token in lower case", id = "echo-auth?case=lower",
      expect = { kind = "http", status = 401, no_secret = true } },
    { name = "a server echoing the token in upper case", id = "echo-auth?case=upper",
      expect = { kind = "http", status = 401, no_secret = true } },
    { name = "a server echoing the token 210 levels deep in its body", id = "deep-token",
      expect = { kind = "http", status = 400, no_secret = true } },
    { name = "a proxy page echoing the request headers", id = "echo-html", opts = { max_retries = 0 },
      expect = { kind = "http", status = 502, snippet = true, no_secret = true } },
    { name = "control characters in the API's message stay out of the line", id = "ctl-message",
      opts = { max_retries = 0 }, expect = { kind = "http", status = 500, one_line = true,
          message = "line one\\r\\nFAKE: log line\\x1B[31m red \\u{0085} nel \\u{009B} csi "
              .. "\\u{2028} ls \\u{202E} rlo" } },
    -- proxies (the mock as mock.test, a name only the proxy resolves)
    { name = "through an http proxy", where = "proxied", proxy = "plain", id = "ok",
      expect = { ok = true, proxy_log = "GET http://mock.test:" } },
    { name = "through a CONNECT tunnel, TLS verified", where = "proxied_tls", proxy = "plain", id = "ok",
      expect = { ok = true, proxy_log = "CONNECT mock.test:" } },
    { name = "proxy credentials from the proxy URL", where = "proxied", proxy = "auth", id = "ok",
      expect = { ok = true, proxy_log = "Proxy-Authorization: Basic dXNlcjpzM2NyZXQ=" } },
    { name = "an https proxy URL over a transport that cannot use one", where = "proxied", proxy = "https", id = "ok",
      only = "nginx", expect = { kind = "config", message = "only http:// proxies" } },
    -- TLS
    { name = "verified TLS", where = "tls", id = "ok", expect = { ok = true } },
    { name = "untrusted certificate", where = "rogue", id = "ok", expect = { kind = "tls", attempts = 1 } },
    { name = "certificate for another name", where = "wrong_host", id = "ok", expect = { kind = "tls", attempts = 1 } },
    { name = "insecure = true accepts an untrusted certificate", where = "rogue", id = "ok",
      opts = { insecure = true }, expect = { ok = true } },
}

_M.by_name = {}
for _, case in ipairs(_M.cases) do _M.by_name[case.name] = case end

local function fill(s, env)
    return (s:gsub("%$(%u+)", function(k)
        return assert(env[string.lower(k)], "matrix: no $" .. k)
    end))
end

--- The base URL and options for a case.  env: { base, https, rogue,
--  wrong_host, refused, localhost, http, ca_file, key, token, proxy }.
function _M.setup(case, env)
    local where = case.where or "faults"
    local bases = { faults = env.base, tls = env.https, rogue = env.rogue, wrong_host = env.wrong_host,
        refused = env.refused, proxied = env.base and (env.base:gsub("//[^/:]+:", "//mock.test:")),
        proxied_tls = env.https and (env.https:gsub("//[^/:]+:", "//mock.test:")) }
    local opts = {}
    for k, v in pairs(case.opts or {}) do opts[k] = v end
    local real_sleep = opts.real_sleep
    opts.real_sleep = nil
    opts.base_url = assert(bases[where], "matrix: no server " .. where) .. (where == "refused" and "" or "/fault/by-id")
    if where ~= "faults" and where ~= "refused" and env.ca_file then opts.ca_file = env.ca_file end
    if case.proxy == "plain" then opts.proxy = env.proxy end
    if case.proxy == "auth" then opts.proxy = (env.proxy:gsub("//", "//user:s3cret@")) end
    if case.proxy == "https" then opts.proxy = (env.proxy:gsub("^http:", "https:")) end
    if opts.max_retry_wait == nil then opts.max_retry_wait = 0 end
    return opts, real_sleep
end

--- Run a case with make_client(opts, waits, real_sleep) -> client and
--  get(client, id) -> session, err.  Returns a plain result table (it
--  crosses from nginx as JSON).
function _M.run(case, env, make_client, get, now)
    local opts, real_sleep = _M.setup(case, env)
    local waits = {}
    local c = make_client(opts, waits, real_sleep)
    local ids = case.ids or { case.id }
    local t0 = now()
    local result = { waits = waits }
    if case.heap then
        collectgarbage()
        collectgarbage()
        result.heap_before = collectgarbage("count")
    end
    for _, raw in ipairs(ids) do
        local id = fill(raw, env)
        local s, err = get(c, id)
        if err then
            result.ok = false
            result.kind, result.status, result.code = err.kind, err.status, err.curl_code
            result.attempts, result.message = err.attempts or 1, tostring(err)
            result.snippet = err.snippet ~= nil
            result.data = s ~= nil
            if env.token then
                -- every string of the error, its body included
                local texts = {}
                local function walk(v, depth)
                    if depth > 20 then return end
                    for k, x in pairs(v) do
                        texts[#texts + 1] = tostring(k)
                        if type(x) == "table" then walk(x, depth + 1) else texts[#texts + 1] = tostring(x) end
                    end
                end
                walk(err, 0)
                texts[#texts + 1] = tostring(err)
                -- in any case: a host name, say, comes back lower-cased
                result.secret_seen = table.concat(texts, "\n"):lower():find(env.token:lower(), 1, true) ~= nil
            end
            local line = tostring(err)
            -- no C0 control, DEL, C1 control, line separator or bidi override
            result.one_line = not (line:find("[%z\1-\31\127]") or line:find("\194[\128-\159]")
                or line:find("\226\128[\168-\174]") or line:find("\226\129[\166-\169]"))
            err, s = nil, nil -- luacheck: ignore (dropped before the heap is measured)
            break
        end
        result.ok = type(s) == "table" and s.id == id
        result.got_id = type(s) == "table" and s.id or nil
        if not result.ok and not case.expect.ok_id then break end
    end
    result.elapsed = now() - t0
    if case.heap then
        c = nil -- luacheck: ignore (dropped before the heap is measured)
        collectgarbage()
        collectgarbage()
        result.heap_growth_kb = collectgarbage("count") - result.heap_before
    end
    return result
end

--- nil when the result is what the case expects, else why not.
function _M.check(case, r)
    local e = case.expect
    local function fail(what) return case.name .. ": " .. what .. " (" .. tostring(r.message or r.got_id) .. ")" end
    if r.data then return fail("a failure came with data") end
    if e.ok and not r.ok then return fail("expected the session") end
    if e.ok_id and r.got_id ~= e.ok_id then return fail("expected the session " .. e.ok_id) end
    if e.kind and r.kind ~= e.kind then return fail("kind " .. tostring(r.kind) .. ", expected " .. e.kind) end
    if e.status and r.status ~= e.status then return fail("status " .. tostring(r.status) .. ", expected "
        .. e.status) end
    if e.code and r.code ~= e.code then return fail("code " .. tostring(r.code) .. ", expected " .. e.code) end
    if e.attempts and r.kind and r.attempts ~= e.attempts then
        return fail("attempts " .. tostring(r.attempts) .. ", expected " .. e.attempts)
    end
    if e.waits and #r.waits ~= e.waits then return fail(#r.waits .. " waits, expected " .. e.waits) end
    if e.wait_values then
        for i, w in ipairs(e.wait_values) do
            if math.abs((r.waits[i] or -1) - w) > 1 then return fail("wait " .. tostring(r.waits[i]) .. ", expected "
                .. w) end
        end
    end
    if e.snippet and not r.snippet then return fail("no snippet") end
    if e.proxy_log and not (r.proxy_log or ""):find(e.proxy_log, 1, true) then
        return fail("the proxy saw no " .. e.proxy_log)
    end
    if e.no_secret and r.secret_seen ~= false then return fail("the token is in the error") end
    if e.one_line and not r.one_line then return fail("the error's line has control characters") end
    if e.max_heap_kb and not (r.heap_growth_kb and r.heap_growth_kb <= e.max_heap_kb) then
        return fail(string.format("%.0f KB of Lua heap kept after the call", r.heap_growth_kb or -1))
    end
    if e.message and not (r.message or ""):find(e.message, 1, true) then return fail("message lacks " .. e.message) end
    if e.max_elapsed and r.elapsed > e.max_elapsed then
        return fail(string.format("took %.2f s, at most %.2f s expected", r.elapsed, e.max_elapsed))
    end
    if e.min_elapsed and r.elapsed < e.min_elapsed then
        return fail(string.format("took %.2f s, at least %.2f s expected", r.elapsed, e.min_elapsed))
    end
    return nil
end

return _M
