--- A tiny event loop for hosts that have none: coroutines that wait on
--  descriptors and timeouts, and one blocking poll for all of them.  The
--  loop adapter it hands out is what a user of any other loop writes
--  (see cozmox.loop): about twenty lines.
--
--   local sched = scheduler.new(poll)
--     poll(fds, timeout) -> ready   blocks until one of fds ({ fd =, events
--                                   = "r"|"w"|"rw" }) is ready or timeout
--                                   seconds passed; ready: { [fd] = events }
--   sched.adapter                   { wait = ... } for cozmox.new({ loop = })
--   sched.spawn(fn, ...)            run fn in a new coroutine (its error
--                                   ends run() with a traceback)
--   sched.catch(fn, handler)        the same, but an error goes to handler
--   sched.run()                     until every coroutine ended
--
-- scheduler.select_poll: poll over luasocket's socket.select.
local _M = {}

local co_create, co_resume, co_yield, co_running, co_status =
    coroutine.create, coroutine.resume, coroutine.yield, coroutine.running, coroutine.status

local function clock()
    return require("cozmox.core").now()
end

function _M.new(poll)
    local sched = { waiting = {}, live = 0 }
    local waiting = sched.waiting -- co -> { fds =, until = }

    local handlers = setmetatable({}, { __mode = "k" })
    local function step(co, ...)
        local ok, err = co_resume(co, ...)
        if co_status(co) == "dead" then sched.live = sched.live - 1 end
        if not ok then
            if handlers[co] then return handlers[co](err) end
            error(debug.traceback(co, tostring(err)), 0)
        end
    end

    -- The adapter: park the coroutine with what it waits for.
    sched.adapter = {
        wait = function(fds, timeout)
            waiting[co_running()] = { fds = fds, at = clock() + timeout }
            return co_yield()
        end,
    }

    function sched.spawn(fn, ...)
        sched.live = sched.live + 1
        step(co_create(fn), ...)
    end

    function sched.catch(fn, handler)
        local co = co_create(fn)
        handlers[co] = handler
        sched.live = sched.live + 1
        step(co)
    end

    function sched.run()
        while sched.live > 0 do
            local all, soonest, seen = {}, math.huge, {}
            for _, w in pairs(waiting) do
                soonest = math.min(soonest, w.at)
                for _, f in ipairs(w.fds) do
                    assert(not seen[f.fd], "descriptor " .. f.fd .. " watched twice at once")
                    seen[f.fd] = true
                    all[#all + 1] = f
                end
            end
            if next(waiting) == nil then error("scheduler: coroutines alive but none waits") end
            local ready = poll(all, math.max(0, soonest - clock()))
            local t = clock()
            local wake = {}
            for co, w in pairs(waiting) do
                local mine = {}
                local any = false
                for _, f in ipairs(w.fds) do
                    if ready[f.fd] then mine[f.fd], any = ready[f.fd], true end
                end
                if any or t >= w.at then wake[#wake + 1] = { co, mine } end
            end
            for _, c in ipairs(wake) do
                waiting[c[1]] = nil
                step(c[1], c[2])
            end
        end
    end

    return sched
end

--- poll(fds, timeout) over luasocket's select (descriptors wrapped in
--  objects with getfd).
function _M.select_poll(fds, timeout)
    local socket = require("socket")
    local r, w = {}, {}
    for _, f in ipairs(fds) do
        local o = { getfd = function() return f.fd end, dirty = function() return false end, fd = f.fd }
        if f.events:find("r") then r[#r + 1] = o end
        if f.events:find("w") then w[#w + 1] = o end
    end
    local rr, ww = socket.select(r, w, timeout)
    local ready = {}
    for _, o in ipairs(rr or {}) do ready[o.fd] = "r" end
    for _, o in ipairs(ww or {}) do ready[o.fd] = (ready[o.fd] or "") .. "w" end
    return ready
end

return _M
