--- cozmox.loop: adapters that let a client run inside a host's event loop
--  without ever blocking it:  cozmox.new({ loop = cozmox.loop.luv(vim.loop) }).
--
-- An adapter is a table with one of two functions:
--
--   wait(fds, timeout) -> ready
--     Suspend the calling coroutine until one of fds is ready or timeout
--     seconds passed, then return.  The client's curl transfers run on
--     one curl multi handle that this function lets the host's loop wait
--     for (cozmox.transport.loop).
--       fds      array of { fd = <integer>, events = "r" | "w" | "rw" }
--                (possibly empty: then it is a sleep)
--       timeout  seconds >= 0 (fractions; 0: just let the loop turn once)
--       ready    { [fd] = events seen ("r", "w", "rw") or true } for the
--                descriptors found ready ({} after a timeout), or nil when
--                the adapter cannot tell (every watched descriptor is then
--                checked)
--     It is called only from inside a coroutine; it must not call back
--     into the client, and it must stop watching every descriptor before
--     it returns (the same descriptor may be asked for again, or closed,
--     right after).  It never sees the same descriptor twice at once.
--     Raising inside it raises out of the client's call.
--
--   transport(settings, secret) -> t
--     Supply a transport of your own (the contract of cozmox.transport:
--     t:perform, t:perform_many, t:close), e.g. on the host's own HTTP
--     client.  The client uses it for every call.
--
-- Optionally, sleep(seconds): how the client waits between retries
-- (default: wait({}, seconds); the `sleep` option of cozmox.new wins).
--
-- Calls from outside a coroutine return nil, err with kind "config" (the
-- adapter would have nothing to suspend).
local type, ipairs, pairs, error, setmetatable = type, ipairs, pairs, error, setmetatable
local co_running, co_yield, co_resume, co_status = coroutine.running, coroutine.yield, coroutine.resume,
    coroutine.status
local unpack = table.unpack or unpack
local math_floor, math_max = math.floor, math.max

local _M = {}

-- uv -> { [fd] = the wait now polling fd }, shared by every adapter on
-- one luv: a wait whose coroutine was closed before its poll fired may
-- still hold a descriptor another wait needs (libuv refuses two polls on
-- one descriptor); the new wait takes it over.
local holders = setmetatable({}, { __mode = "k" })

--- luv (libuv): Neovim's vim.loop, luvit, Debian's lua-luv.
--  schedule (optional): how a callback resumes the coroutine; in Neovim
--  (uv is vim.loop) it defaults to vim.schedule, so that the code after
--  a request may call vim.api.
function _M.luv(uv, schedule)
    if type(uv) ~= "table" or type(uv.new_poll) ~= "function" or type(uv.new_timer) ~= "function" then
        error("bad argument #1 to 'luv' (the luv module expected, e.g. vim.loop or require('luv'))", 2)
    end
    if schedule ~= nil and type(schedule) ~= "function" then
        error("bad argument #2 to 'luv' (a function expected, e.g. vim.schedule, or nothing)", 2)
    end
    if schedule == nil and type(vim) == "table" and vim.loop == uv then schedule = vim.schedule end
    local held = holders[uv] or {}
    holders[uv] = held
    local function wait(fds, timeout)
        local co = co_running()
        local st = { polls = {} }
        local ready, fired, timer = {}, false, nil
        local function resume()
            if co_status(co) ~= "suspended" then return end -- closed meanwhile
            local ok, err = co_resume(co, ready)
            if not ok then error(err, 0) end
        end
        local function wake()
            if fired then return end
            fired = true
            for fd, p in pairs(st.polls) do
                if held[fd] == st then held[fd] = nil end
                p:stop()
                p:close()
            end
            timer:stop()
            timer:close()
            if schedule then schedule(resume) else resume() end
        end
        for _, w in ipairs(fds) do
            local fd = w.fd
            local old = held[fd]
            if old then
                old.polls[fd]:stop()
                old.polls[fd]:close()
                old.polls[fd] = nil
            end
            local p, perr = uv.new_poll(fd)
            if not p then
                for f, q in pairs(st.polls) do
                    held[f] = nil
                    q:stop()
                    q:close()
                end
                error("cozmox.loop.luv: cannot poll descriptor " .. fd .. ": " .. tostring(perr), 0)
            end
            st.polls[fd], held[fd] = p, st
            p:start(w.events, function(_, events)
                ready[fd] = events or true
                wake()
            end)
        end
        timer = uv.new_timer()
        timer:start(math_max(0, math_floor(timeout * 1000 + 0.5)), 0, wake)
        repeat co_yield() until fired -- (a stray resume by someone else is ignored)
        return ready
    end
    return { wait = wait }
end

--- cqueues: call the client from a coroutine of a cqueue (cq:wrap).
--  cqueues keeps a descriptor registered with the kernel after a poll
--  and would trip over it once curl closed it: every descriptor is
--  cancelled as soon as the poll returned.
function _M.cqueues(cqueues)
    if cqueues ~= nil and (type(cqueues) ~= "table" or type(cqueues.poll) ~= "function"
        or type(cqueues.cancel) ~= "function") then
        error("bad argument #1 to 'cqueues' (the cqueues module expected, e.g. require('cqueues'), or nothing)", 2)
    end
    cqueues = cqueues or require("cqueues")
    local poll, cancel = cqueues.poll, cqueues.cancel
    local function wait(fds, timeout)
        local objs, nfds = {}, #fds
        for i, w in ipairs(fds) do objs[i] = { pollfd = w.fd, events = w.events } end
        objs[nfds + 1] = timeout
        local got = { poll(unpack(objs, 1, nfds + 1)) }
        for i = 1, nfds do cancel(fds[i].fd) end
        local ready = {}
        for _, o in ipairs(got) do
            if type(o) == "table" then ready[o.pollfd] = true end
        end
        return ready
    end
    return { wait = wait, sleep = cqueues.sleep }
end

--- HAProxy: its Lua API cannot watch a foreign descriptor, so this
--  adapter brings a transport over HAProxy's own client instead.  Lives
--  in lua/cozmox/loop/haproxy.lua (a module returning the function that
--  makes the adapter), loaded only when asked for.
function _M.haproxy(...)
    return require("cozmox.loop.haproxy")(...)
end

return _M
